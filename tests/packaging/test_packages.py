# SPDX-License-Identifier: LGPL-2.1-or-later
"""The Debian packages as an administrator receives them: built by
dpkg-buildpackage, clean under lintian, installed with apt, every path in
place, the installed daemon run as the installed `safecad` user on a
private bus that loads the installed bus policy, read by another user,
then purged with nothing of ours left but what Debian policy keeps (the
system user).

It installs packages on the machine, so tools/run-tests.sh runs it last,
on its own; it skips unless SAFECAD_PACKAGE_TESTS=1 says the machine may
be changed."""

import glob
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"

pytestmark = pytest.mark.skipif(
    os.environ.get("SAFECAD_PACKAGE_TESTS") != "1" or os.geteuid() != 0,
    reason="installs packages: SAFECAD_PACKAGE_TESTS=1, as root")

# What each package must place, beyond what its .install files say.
EXPECTED = {
    "safecad": [
        "/usr/sbin/safecad", "/usr/libexec/safecad/safecad-worker", "/usr/bin/safectl", "/etc/safecad/safecad.conf",
        "/lib/systemd/system/safecad.service", "/usr/lib/sysusers.d/safecad.conf",
        "/usr/lib/tmpfiles.d/safecad.conf", "/usr/share/dbus-1/system.d/org.safecad.Manager1.conf",
        "/usr/share/dbus-1/system-services/org.safecad.Manager1.service",
        "/usr/share/dbus-1/interfaces/org.safecad.Manager1.xml",
        "/usr/share/dbus-1/interfaces/org.safecad.Token1.xml",
        "/usr/share/polkit-1/actions/org.safecad.policy",
        "/usr/share/polkit-1/rules.d/50-safecad-pcscd.rules",
        "/usr/share/safecad/ca.d/safe-ca.conf", "/usr/share/safecad/ca.d/safe-ca-issuers.pem",
        "/usr/share/locale/vi/LC_MESSAGES/safecad.mo",
        "/usr/share/man/man1/safectl.1.gz", "/usr/share/man/man5/safecad.conf.5.gz",
        "/usr/share/man/man5/safecad-ca.d.5.gz", "/usr/share/man/man8/safecad.8.gz",
        "/usr/share/bash-completion/completions/safectl",
        "/usr/lib/systemd/catalog/safecad.catalog",
        "/usr/share/doc/safecad/copyright",
    ],
    "safecad-manager": [
        "/usr/bin/safecad-manager", "/usr/share/applications/org.safecad.Manager.desktop",
        "/usr/share/dbus-1/services/org.safecad.Manager.service",
        "/usr/share/icons/hicolor/scalable/apps/org.safecad.Manager.svg",
        "/usr/share/metainfo/org.safecad.Manager.metainfo.xml",
        "/usr/share/man/man1/safecad-manager.1.gz", "/usr/share/doc/safecad-manager/copyright",
    ],
    "safecad-notify": [
        "/usr/bin/safecad-notify", "/usr/lib/systemd/user/safecad-notify.service",
        "/etc/xdg/autostart/safecad-notify.desktop",
        "/usr/share/man/man1/safecad-notify.1.gz", "/usr/share/doc/safecad-notify/copyright",
    ],
}


def run(argv, **kwargs):
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    kwargs.setdefault("timeout", 900)
    return subprocess.run(argv, **kwargs)


@pytest.fixture(scope="module")
def built():
    """The packages built from the tracked files of the tree."""
    directory = tempfile.mkdtemp(prefix="safecad-deb-")
    source = os.path.join(directory, "safecad")
    files = run(["git", "-C", REPO, "ls-files", "-z"], check=True).stdout.split("\0")
    for name in filter(None, files):
        target = os.path.join(source, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(REPO, name), target, follow_symlinks=False)
    r = run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=source)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def debs(directory):
    return sorted(p for p in glob.glob(os.path.join(directory, "*.deb"))
                  if "-dbgsym_" not in p)


def test_lintian_has_no_errors_and_no_warnings(built):
    changes = glob.glob(os.path.join(built, "*.changes"))
    assert len(changes) == 1, changes
    r = run(["lintian", "--fail-on", "error,warning", "--allow-root", changes[0]])
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.fixture(scope="module")
def installed(built):
    r = run(["apt-get", "install", "-y", "--no-install-recommends"] + debs(built),
            env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    yield
    run(["apt-get", "purge", "-y", "safecad", "safecad-notify", "safecad-manager"],
        env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def test_every_path_is_installed(installed):
    for package, paths in EXPECTED.items():
        listed = set(run(["dpkg", "-L", package], check=True).stdout.split())
        for path in paths:
            assert path in listed, f"{package} does not list {path}"
            assert os.path.exists(path), f"{path} is missing"
    conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}", "safecad"], check=True).stdout
    assert "/etc/safecad/safecad.conf" in conffiles
    # Every key is there, commented.
    with open("/etc/safecad/safecad.conf") as f:
        text = f.read()
    for key in ("modules", "warn_days", "connect_timeout", "timeout", "confirm_timeout",
                "textfile"):
        assert f"\n#{key} = " in text, key
    assert run(["getent", "passwd", "safecad"]).returncode == 0, "no safecad user"
    st = os.stat("/var/lib/safecad")
    assert (st.st_mode & 0o777) == 0o700
    assert run(["stat", "-c", "%U", "/var/lib/safecad"]).stdout.strip() == "safecad"


BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <!-- As Debian's system.conf: nobody owns a name or sends unless a policy
       says so; then the installed policy of safecad. -->
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <include>/usr/share/dbus-1/system.d/org.safecad.Manager1.conf</include>
</busconfig>
"""


def setpriv(user):
    entry = pwd.getpwnam(user)
    return ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups",
            "--"]


def as_user(user, argv, env, **kwargs):
    return run(setpriv(user) + argv, env=env, **kwargs)


def test_installed_daemon_runs_as_its_user_and_serves_others(installed):
    directory = tempfile.mkdtemp(prefix="safecad-pkg-run-")
    os.chmod(directory, 0o755)
    procs = []
    try:
        socket = os.path.join(directory, "bus")
        with open(os.path.join(directory, "bus.conf"), "w") as f:
            f.write(BUS_CONFIG.format(socket=socket))
        bus = subprocess.Popen(["dbus-daemon", f"--config-file={directory}/bus.conf",
                                "--print-address", "--nofork"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        procs.append(bus)
        address = bus.stdout.readline().strip()
        os.chmod(socket, 0o777)

        # A SoftHSM token the safecad user can read, and the daemon's own
        # configuration and state folders.
        hsm = os.path.join(directory, "hsm")
        os.makedirs(os.path.join(hsm, "tokens"))
        with open(os.path.join(hsm, "softhsm2.conf"), "w") as f:
            f.write(f"directories.tokendir = {hsm}/tokens\nobjectstore.backend = file\n")
        env = dict(PATH="/usr/sbin:/usr/bin:/sbin:/bin", SOFTHSM2_CONF=f"{hsm}/softhsm2.conf",
                   DBUS_SYSTEM_BUS_ADDRESS=address, LANG="C.UTF-8")
        r = run(["softhsm2-util", "--init-token", "--free", "--label", "Packaged",
                 "--pin", "123456", "--so-pin", "12345678"], env=env)
        assert r.returncode == 0, r.stderr
        conf = os.path.join(directory, "conf")
        state = os.path.join(directory, "state")
        os.makedirs(os.path.join(conf, "ca.d"))
        os.makedirs(state)
        with open(os.path.join(conf, "safecad.conf"), "w") as f:
            f.write(f"[pkcs11]\nmodules = {SOFTHSM}\n")
        run(["chown", "-R", "safecad:safecad", hsm, state], check=True)

        daemon_env = dict(env, CONFIGURATION_DIRECTORY=conf, STATE_DIRECTORY=state)
        daemon = subprocess.Popen(
            setpriv("safecad") + ["/usr/sbin/safecad"], env=daemon_env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True)
        procs.append(daemon)

        status = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = as_user("nobody", ["/usr/bin/safectl", "--json", "status"], env)
            if r.returncode == 0:
                status = json.loads(r.stdout)
                break
            time.sleep(0.2)
        assert status is not None, r.stderr
        assert [t["label"] for t in status["tokens"]] == ["Packaged"], status

        # Only the safecad user may own the name: root, here, is refused by
        # the installed policy.
        r = run(["busctl", f"--address={address}", "call", "org.freedesktop.DBus",
                 "/org/freedesktop/DBus", "org.freedesktop.DBus", "RequestName", "su",
                 "org.safecad.Manager1", "0"], env=env)
        assert r.returncode != 0 and "Access denied" in r.stderr, r.stdout + r.stderr

        daemon.send_signal(signal.SIGTERM)
        out, _ = daemon.communicate(timeout=10)
        assert daemon.returncode == 0, out
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
        shutil.rmtree(directory, ignore_errors=True)


def test_purge_leaves_nothing_but_the_user(installed):
    ours = set()
    for package in EXPECTED:
        ours |= {p for p in run(["dpkg", "-L", package], check=True).stdout.split()
                 if os.path.isfile(p)}
    r = run(["apt-get", "purge", "-y", "safecad-manager", "safecad-notify", "safecad"],
            env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    assert r.returncode == 0, r.stdout + r.stderr
    left = sorted(p for p in ours if os.path.lexists(p))
    assert left == [], left
    for path in ("/etc/safecad", "/var/lib/safecad"):
        assert not os.path.exists(path), f"{path} is left after purge"
    for package in EXPECTED:
        assert run(["dpkg", "-s", package]).returncode != 0, f"{package} still known"
    # Debian keeps a package's system user (policy 9.2.2): it may own files
    # elsewhere.
    assert run(["getent", "passwd", "safecad"]).returncode == 0
