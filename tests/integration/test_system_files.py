# SPDX-License-Identifier: LGPL-2.1-or-later
"""The files that make safecad a system service, as `meson install
--destdir` puts them: where the distribution expects each one, and each
one checked by the tool that reads it (systemd-analyze, systemd-sysusers,
systemd-tmpfiles, dbus-daemon, xmllint with the DTDs, node for the polkit
rule, desktop-file-validate, man, bash-completion).

`systemd-analyze verify` fails when ExecStart= names a missing file, so the
units are verified as installed with ExecStart= pointing into the destdir:
safecad.service runs the installed daemon; safecad-notify.service runs the
installed agent. Documentation= is checked against the installed man pages.
"""

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import unicodedata
import xml.etree.ElementTree as ET

import pytest

from harness.safecad import BUILD_DIR, REPO, SAFECTL, sanitizer_env

SERVICE_USER = "safecad"
BUS_NAME = "org.safecad.Manager1"
EXPOSURE_LIMIT = 2.0
# Users every Debian system has (base-passwd), standing in for "safecad"
# and for an ordinary caller on a test bus.
STAND_IN_SERVICE_USER = ("daemon", 1)
STAND_IN_CALLER = ("nobody", 65534)

# Attributes dbus-daemon(1) accepts on <allow>/<deny> that the busconfig.dtd
# dbus ships does not declare: that DTD predates them, and every policy in
# Debian's own /usr/share/dbus-1/system.d fails it. Validation uses the
# shipped DTD with these declared too; dbus-daemon itself then loads the file.
BUSCONFIG_DTD = "/usr/share/xml/dbus-1/busconfig.dtd"
BUSCONFIG_MISSING_ATTRIBUTES = (
    "send_interface send_member send_error send_broadcast send_destination "
    "send_destination_prefix send_type send_path receive_interface receive_member "
    "receive_error receive_sender receive_type receive_path send_requested_reply "
    "receive_requested_reply eavesdrop own_prefix group"
).split()
POLICYCONFIG_DTD = "/usr/share/polkit-1/policyconfig-1.dtd"

ACTIONS = {
    # id: (allow_any, allow_inactive, allow_active)
    "org.safecad.activate": ("auth_admin", "auth_admin_keep", "yes"),
    "org.safecad.change-pin": ("auth_admin", "auth_admin_keep", "yes"),
    "org.safecad.manage": ("auth_admin", "auth_admin_keep", "yes"),
    "org.safecad.export": ("yes", "yes", "yes"),
}
MAN_PAGES = ["man8/safecad.8", "man1/safectl.1", "man1/safecad-notify.1",
             "man5/safecad.conf.5", "man5/safecad-ca.d.5"]


def tool(name):
    path = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}")
                                  else None)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def run(argv, **kwargs):
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    kwargs.setdefault("timeout", 60)
    return subprocess.run(argv, **kwargs)


def pkg_config(package, variable):
    r = run(["pkg-config", f"--variable={variable}", package])
    return r.stdout.strip() if r.returncode == 0 else None


class Install:
    """One `meson install --destdir` of the build under test."""

    def __init__(self, destdir):
        self.destdir = destdir
        r = run(["meson", "introspect", BUILD_DIR, "--buildoptions"])
        assert r.returncode == 0, f"meson introspect {BUILD_DIR}: {r.stderr}"
        options = {o["name"]: o["value"] for o in json.loads(r.stdout)}
        self.options = options
        self.prefix = options["prefix"]
        self.man = options.get("man", "auto") != "disabled" and shutil.which("scdoc") is not None

    def opt(self, name):
        """A meson directory option as an absolute path."""
        return os.path.join(self.prefix, self.options[name])

    def distribution_dir(self, package, variable, fallback):
        """Where the distribution's .pc file says the files go when our
        prefix is its own; otherwise the same layout under our prefix (the
        rule the meson.build files follow)."""
        if pkg_config(package, "prefix") == self.prefix:
            value = pkg_config(package, variable)
            if value:
                return value
        return os.path.join(self.prefix, fallback)

    def path(self, installed):
        """The file in the destdir that will be `installed` on the system."""
        return os.path.join(self.destdir, installed.lstrip("/"))

    def read(self, installed):
        with open(self.path(installed), encoding="utf-8") as f:
            return f.read()

    # Where each file belongs on the system.
    @property
    def daemon(self):
        return os.path.join(self.opt("sbindir"), "safecad")

    @property
    def system_unit(self):
        return os.path.join(self.distribution_dir(
            "systemd", "systemdsystemunitdir", "lib/systemd/system"), "safecad.service")

    @property
    def user_unit(self):
        return os.path.join(self.distribution_dir(
            "systemd", "systemduserunitdir", "lib/systemd/user"), "safecad-notify.service")

    @property
    def sysusers(self):
        return os.path.join(self.distribution_dir("systemd", "sysusersdir", "lib/sysusers.d"),
                            "safecad.conf")

    @property
    def tmpfiles(self):
        return os.path.join(self.distribution_dir("systemd", "tmpfilesdir", "lib/tmpfiles.d"),
                            "safecad.conf")

    @property
    def catalog(self):
        return os.path.join(self.distribution_dir(
            "systemd", "catalogdir", "lib/systemd/catalog"), "safecad.catalog")

    @property
    def bus_activation(self):
        return os.path.join(self.distribution_dir(
            "dbus-1", "system_bus_services_dir", "share/dbus-1/system-services"),
            f"{BUS_NAME}.service")

    @property
    def bus_policy(self):
        return os.path.join(self.opt("datadir"), "dbus-1", "system.d", f"{BUS_NAME}.conf")

    @property
    def polkit_actions(self):
        return os.path.join(self.distribution_dir(
            "polkit-gobject-1", "policydir", "share/polkit-1/actions"), "org.safecad.policy")

    @property
    def polkit_rule(self):
        return os.path.join(self.opt("datadir"), "polkit-1", "rules.d", "50-safecad-pcscd.rules")

    @property
    def autostart(self):
        return os.path.join(self.opt("sysconfdir"), "xdg", "autostart",
                            "safecad-notify.desktop")

    @property
    def completion(self):
        return os.path.join(self.distribution_dir(
            "bash-completion", "completionsdir", "share/bash-completion/completions"), "safectl")

    @property
    def mandir(self):
        return self.opt("mandir")

    @property
    def catalogues(self):
        """The compiled translation of each language in po/LINGUAS."""
        with open(os.path.join(REPO, "po", "LINGUAS")) as f:
            languages = [line.split("#")[0].strip() for line in f]
        return {os.path.join(self.opt("localedir"), language, "LC_MESSAGES", "safecad.mo")
                for language in languages if language}

    def manager_files(self):
        """The Token Manager and its desktop integration, when it is built
        (GTK 4 and libadwaita found)."""
        if not os.path.exists(os.path.join(BUILD_DIR, "client", "safecad-manager")):
            return set()
        datadir = self.opt("datadir")
        pages = {os.path.join(self.mandir, "man1/safecad-manager.1")} if self.man else set()
        return pages | {
            os.path.join(self.opt("bindir"), "safecad-manager"),
            os.path.join(datadir, "applications", "org.safecad.Manager.desktop"),
            os.path.join(datadir, "dbus-1", "services", "org.safecad.Manager.service"),
            os.path.join(datadir, "icons", "hicolor", "scalable", "apps",
                         "org.safecad.Manager.svg"),
            os.path.join(datadir, "metainfo", "org.safecad.Manager.metainfo.xml"),
        }

    def expected(self):
        files = {
            self.daemon,
            os.path.join(self.opt("libexecdir"), "safecad", "safecad-worker"),
            os.path.join(self.opt("bindir"), "safectl"),
            os.path.join(self.opt("bindir"), "safecad-notify"),
            self.system_unit,
            self.user_unit,
            self.sysusers,
            self.tmpfiles,
            self.catalog,
            self.bus_activation,
            self.bus_policy,
            self.polkit_actions,
            self.polkit_rule,
            self.autostart,
            self.completion,
            # Every setting, commented: where an administrator starts.
            os.path.join(self.opt("sysconfdir"), "safecad", "safecad.conf"),
            os.path.join(self.opt("datadir"), "dbus-1", "interfaces", "org.safecad.Manager1.xml"),
            os.path.join(self.opt("datadir"), "dbus-1", "interfaces", "org.safecad.Token1.xml"),
            os.path.join(self.opt("datadir"), "safecad", "ca.d", "safe-ca.conf"),
            os.path.join(self.opt("datadir"), "safecad", "ca.d", "safe-ca-issuers.pem"),
        }
        files |= self.catalogues
        files |= self.manager_files()
        if self.man:
            files |= {os.path.join(self.mandir, page) for page in MAN_PAGES}
        return files

    def installed(self):
        found = set()
        for folder, _, names in os.walk(self.destdir):
            for name in names:
                found.add("/" + os.path.relpath(os.path.join(folder, name), self.destdir))
        return found


@pytest.fixture(scope="module")
def install():
    tool("meson")
    if not os.path.exists(os.path.join(BUILD_DIR, "build.ninja")):
        pytest.fail(f"{BUILD_DIR} is not a meson build folder (SAFECAD_BUILD_DIR)")
    destdir = tempfile.mkdtemp(prefix="scit-destdir-")
    try:
        # Builds first if anything is out of date (usually nothing).
        r = run(["meson", "install", "-C", BUILD_DIR, "--destdir", destdir, "--quiet"],
                timeout=900)
        assert r.returncode == 0, f"meson install failed:\n{r.stdout}\n{r.stderr}"
        yield Install(destdir)
    finally:
        shutil.rmtree(destdir, ignore_errors=True)


@pytest.fixture
def scratch():
    directory = tempfile.mkdtemp(prefix="scit-sys-")
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def unit_copy(install, installed_unit, folder, exec_start):
    """The installed unit with ExecStart= pointing at exec_start."""
    text = install.read(installed_unit)
    assert re.search(r"^ExecStart=", text, re.M), text
    text = re.sub(r"^ExecStart=\S+", f"ExecStart={exec_start}", text, flags=re.M)
    path = os.path.join(folder, os.path.basename(installed_unit))
    with open(path, "w") as f:
        f.write(text)
    return path


def unit_settings(text):
    settings = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


# --- the layout ----------------------------------------------------------


def test_meson_install_puts_every_file_where_the_distribution_expects_it(install):
    expected, installed = install.expected(), install.installed()
    missing = sorted(expected - installed)
    unexpected = sorted(installed - expected)
    assert not missing and not unexpected, (
        f"prefix {install.prefix}\nmissing: {missing}\nnot on the list: {unexpected}")
    assert os.access(install.path(install.daemon), os.X_OK)
    assert os.access(install.path(install.completion), os.R_OK)


def test_installed_catalogues_hold_the_translations(install):
    msgunfmt = tool("msgunfmt")
    for catalogue in install.catalogues:
        r = run([msgunfmt, install.path(catalogue)])
        assert r.returncode == 0, r.stderr
        assert 'msgid "Accept and activate?"' in r.stdout, catalogue
        assert 'msgstr "Đồng ý và kích hoạt?"' in r.stdout or "/vi/" not in catalogue, catalogue


def test_installed_files_name_the_installed_paths(install):
    unit = unit_settings(install.read(install.system_unit))
    assert unit["ExecStart"] == [install.daemon]
    activation = unit_settings(install.read(install.bus_activation))
    assert activation["Exec"] == [install.daemon]
    notify = unit_settings(install.read(install.user_unit))
    agent = os.path.join(install.opt("bindir"), "safecad-notify")
    assert notify["ExecStart"] == [agent]
    assert notify["ConditionFileIsExecutable"] == [agent]
    desktop = unit_settings(install.read(install.autostart))
    assert desktop["Exec"] == [agent] and desktop["TryExec"] == [agent]
    for page in MAN_PAGES if install.man else []:
        text = install.read(os.path.join(install.mandir, page))
        assert not re.search(r"@\w+@", text), f"{page} has an unsubstituted @name@"


# --- systemd -------------------------------------------------------------


def test_systemd_analyze_verify_every_unit(install, scratch):
    analyze = tool("systemd-analyze")
    env = dict(os.environ, XDG_RUNTIME_DIR=scratch)
    man = []
    if install.man:
        env["MANPATH"] = install.path(install.mandir)
    else:
        man = ["--man=no"]

    service = unit_copy(install, install.system_unit, scratch, install.path(install.daemon))
    r = run([analyze, "verify", *man, service], env=env)
    assert r.returncode == 0 and not r.stdout + r.stderr, (
        f"systemd-analyze verify safecad.service:\n{r.stdout}{r.stderr}")

    agent = install.path(os.path.join(install.opt("bindir"), "safecad-notify"))
    assert os.access(agent, os.X_OK), f"{agent} is not installed"
    user_unit = unit_copy(install, install.user_unit, scratch, agent)
    r = run([analyze, "--user", "verify", *man, user_unit], env=env)
    assert r.returncode == 0 and not r.stdout + r.stderr, (
        f"systemd-analyze --user verify safecad-notify.service:\n{r.stdout}{r.stderr}")


def test_service_exposure_is_at_most_2(install, scratch, capsys):
    analyze = tool("systemd-analyze")
    service = unit_copy(install, install.system_unit, scratch, install.path(install.daemon))
    r = run([analyze, "security", "--offline=yes", "--no-pager", service])
    found = re.search(r"Overall exposure level for safecad\.service: (\d+\.\d+)", r.stdout)
    assert found, f"no exposure level in:\n{r.stdout}{r.stderr}"
    score = float(found.group(1))
    with capsys.disabled():
        print(f"\nsystemd-analyze security --offline=yes: safecad.service exposure {score}")
    assert score <= EXPOSURE_LIMIT, f"exposure {score} > {EXPOSURE_LIMIT}:\n{r.stdout}"


def test_service_unit_settings(install):
    unit = unit_settings(install.read(install.system_unit))
    for key, value in {
        "Type": "notify",
        "BusName": BUS_NAME,
        "User": SERVICE_USER,
        "StateDirectory": "safecad",
        "StateDirectoryMode": "0700",
        "ConfigurationDirectory": "safecad",
        "Restart": "on-failure",
        "ProtectSystem": "strict",
        "NoNewPrivileges": "yes",
        "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    }.items():
        assert unit.get(key) == [value], f"{key}={unit.get(key)}, wanted {value!r}"
    assert unit.get("WatchdogSec"), "no WatchdogSec="
    # The one the watchdog and activation rely on: the D-Bus activation
    # file starts this very unit.
    activation = unit_settings(install.read(install.bus_activation))
    assert activation["Name"] == [BUS_NAME]
    assert activation["SystemdService"] == ["safecad.service"]
    assert activation["User"] == [SERVICE_USER]


def test_sysusers_and_tmpfiles_create_the_user_and_folders(install, scratch):
    sysusers, tmpfiles = tool("systemd-sysusers"), tool("systemd-tmpfiles")
    root = os.path.join(scratch, "root")
    os.makedirs(os.path.join(root, "etc"))
    r = run([sysusers, f"--root={root}", install.path(install.sysusers)])
    assert r.returncode == 0, r.stderr
    with open(os.path.join(root, "etc", "passwd")) as f:
        users = {line.split(":")[0]: line.split(":") for line in f if line.strip()}
    with open(os.path.join(root, "etc", "group")) as f:
        groups = {line.split(":")[0] for line in f if line.strip()}
    assert SERVICE_USER in users and SERVICE_USER in groups, (users, groups)
    uid = int(users[SERVICE_USER][2])
    assert users[SERVICE_USER][6].strip().endswith("nologin"), users[SERVICE_USER]

    r = run([tmpfiles, f"--root={root}", "--create", install.path(install.tmpfiles)])
    assert r.returncode == 0, r.stderr
    statedir = os.path.join(root, install.opt("localstatedir").lstrip("/"), "lib", "safecad")
    st = os.stat(statedir)
    assert (st.st_uid, st.st_mode & 0o7777) == (uid, 0o700), (statedir, st)
    cad = os.path.join(root, install.opt("sysconfdir").lstrip("/"), "safecad", "ca.d")
    st = os.stat(cad)
    assert (st.st_uid, st.st_mode & 0o7777) == (0, 0o755), (cad, st)


def test_journal_catalog_explains_every_message_id(install, scratch):
    journalctl = tool("journalctl")
    catalog = os.path.join(scratch, "usr", "lib", "systemd", "catalog")
    os.makedirs(catalog)
    shutil.copy(install.path(install.catalog), catalog)
    r = run([journalctl, f"--root={scratch}", "--update-catalog"])
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    r = run([journalctl, f"--root={scratch}", "--list-catalog", "--no-pager"])
    assert r.returncode == 0, r.stderr
    explained = set(re.findall(r"^([0-9a-f]{32}) safecad: ", r.stdout, re.M))
    with open(os.path.join(REPO, "daemon", "log", "log-event.h")) as f:
        sent = set(re.findall(r'#define SAFECAD_MESSAGE_\w+ "([0-9a-f]{32})"', f.read()))
    assert sent and explained == sent, f"in log-event.h: {sent}, in the catalog: {explained}"


def test_one_service_user_everywhere(install):
    """sysusers, the unit, the activation file, the bus policy, the polkit
    owner annotation and the pcscd rule all name the same user."""
    sysusers = [shlex.split(line) for line in install.read(install.sysusers).splitlines()
                if line.strip() and not line.startswith("#")]
    assert [line[:2] for line in sysusers] == [["u", SERVICE_USER]], sysusers
    policy = ET.parse(install.path(install.bus_policy)).getroot()
    owners = [p.get("user") for p in policy.findall("policy") if p.find("allow[@own]") is not None]
    assert owners == [SERVICE_USER]
    rule = install.read(install.polkit_rule)
    assert f'subject.user == "{SERVICE_USER}"' in rule


# --- D-Bus ---------------------------------------------------------------


def extended_busconfig_dtd(folder):
    with open(BUSCONFIG_DTD) as f:
        dtd = f.read()
    for element in ("allow", "deny"):
        declared = re.search(rf"<!ATTLIST {element}(.*?)>", dtd, re.S).group(1).split()
        extra = [a for a in BUSCONFIG_MISSING_ATTRIBUTES if a not in declared]
        dtd += f"\n<!ATTLIST {element}\n" + "".join(
            f"          {a} CDATA #IMPLIED\n" for a in extra) + ">\n"
    path = os.path.join(folder, "busconfig.dtd")
    with open(path, "w") as f:
        f.write(dtd)
    return path


def test_bus_policy_validates_against_the_dtd(install, scratch):
    xmllint = tool("xmllint")
    if not os.path.exists(BUSCONFIG_DTD):
        pytest.skip(f"{BUSCONFIG_DTD} is missing (libdbus-1-dev)")
    dtd = extended_busconfig_dtd(scratch)
    r = run([xmllint, "--noout", "--nonet", "--dtdvalid", dtd, install.path(install.bus_policy)])
    assert r.returncode == 0, r.stderr
    # The DTD named in the file's DOCTYPE, through dbus's XML catalog.
    assert "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN" in install.read(install.bus_policy)


class PolicyBus:
    """A dbus-daemon with Debian's system bus policies and ours, the
    service user replaced by one that exists on this system."""

    def __init__(self, install, folder, service_user, servicedir=None, env=None):
        os.chmod(folder, 0o755)
        self.folder = folder
        self.socket = os.path.join(folder, "system_bus_socket")
        policy = install.read(install.bus_policy)
        assert f'user="{SERVICE_USER}"' in policy
        policy = policy.replace(f'user="{SERVICE_USER}"', f'user="{service_user}"')
        ours = os.path.join(folder, f"{BUS_NAME}.conf")
        with open(ours, "w") as f:
            f.write(policy)
        system = ET.parse("/usr/share/dbus-1/system.conf").getroot()
        policies = "".join(ET.tostring(p, encoding="unicode") for p in system.findall("policy"))
        assert 'context="default"' in policies
        config = os.path.join(folder, "bus.conf")
        with open(config, "w") as f:
            f.write(
                "<busconfig>\n<type>system</type>\n"
                f"<listen>unix:path={self.socket}</listen>\n<auth>EXTERNAL</auth>\n"
                + (f"<servicedir>{servicedir}</servicedir>\n" if servicedir else "")
                + policies + f"\n<include>{ours}</include>\n</busconfig>\n")
        # Activated services write here too.
        self.log_path = os.path.join(folder, "dbus-daemon.log")
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                ["dbus-daemon", f"--config-file={config}", "--print-address", "--nofork"],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                env=env, start_new_session=True, text=True)
        self.address = self.proc.stdout.readline().strip()
        assert self.address, f"dbus-daemon refused the configuration: {self.log()}"
        self.processes = []

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def env(self):
        return dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.address, HOME=self.folder)

    def as_user(self, user, argv):
        _, uid = user
        return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *argv]

    def busctl(self, user, *args):
        argv = ["busctl", f"--address={self.address}", "--timeout=10", *args]
        if user:
            argv = self.as_user(user, argv)
        return run(argv, env=self.env())

    def dbus_send(self, user, destination, path, method, *args):
        """dbus-send, which names the D-Bus error of a refusal."""
        argv = ["dbus-send", f"--bus={self.address}", "--print-reply", "--reply-timeout=10000",
                f"--dest={destination}", path, method, *args]
        if user:
            argv = self.as_user(user, argv)
        return run(argv, env=self.env())

    def request_name(self, user):
        return self.dbus_send(user, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                              "org.freedesktop.DBus.RequestName", f"string:{BUS_NAME}",
                              "uint32:4")

    def has_owner(self):
        r = self.busctl(None, "call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                        "org.freedesktop.DBus", "NameHasOwner", "s", BUS_NAME)
        return r.stdout.strip() == "b true"

    def stop(self):
        for p in self.processes:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def test_bus_policy_only_the_service_user_owns_and_anyone_calls(install, scratch):
    for name in ("dbus-daemon", "dbus-send", "busctl", "setpriv"):
        tool(name)
    bus = PolicyBus(install, scratch, STAND_IN_SERVICE_USER[0])
    try:
        for user in (STAND_IN_CALLER, None):  # an ordinary user, and root
            r = bus.request_name(user)
            assert r.returncode != 0 and re.search(
                r"Error org\.freedesktop\.DBus\.Error\.AccessDenied: .*not allowed to own",
                r.stderr), f"{user or 'root'} could own {BUS_NAME}: {r.stdout}{r.stderr}"

        # The service user owns the name and serves an object (dbusmock).
        owner = subprocess.Popen(
            bus.as_user(STAND_IN_SERVICE_USER, [
                "/usr/bin/python3", "-m", "dbusmock", "--system", BUS_NAME,
                "/org/safecad/Manager1", "org.safecad.Manager1"]),
            env=bus.env(), cwd=scratch, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True, text=True)
        bus.processes.append(owner)
        deadline = time.monotonic() + 15
        while not bus.has_owner():
            assert owner.poll() is None, f"the service user could not own it: {owner.stderr.read()}"
            assert time.monotonic() < deadline, "the service user's name never appeared"
            time.sleep(0.1)

        # Anyone may call it: Debian's default policy denies method calls
        # unless a policy opens them. polkit decides past this point.
        r = bus.dbus_send(STAND_IN_CALLER, BUS_NAME, "/org/safecad/Manager1",
                          "org.freedesktop.DBus.Introspectable.Introspect")
        assert r.returncode == 0, f"an ordinary caller was refused: {r.stderr}"
        assert "org.safecad.Manager1" in r.stdout
    finally:
        bus.stop()


def project_version():
    r = run(["meson", "introspect", BUILD_DIR, "--projectinfo"])
    return json.loads(r.stdout)["version"]


def test_bus_activation_file_starts_safecad(install, scratch):
    """dbus-daemon (run without systemd, so it execs the file's Exec=)
    starts the installed daemon when a client calls the name."""
    for name in ("dbus-daemon", "busctl"):
        tool(name)
    services = os.path.join(scratch, "services")
    os.makedirs(services)
    text = install.read(install.bus_activation).replace(
        f"Exec={install.daemon}", f"Exec={install.path(install.daemon)}")
    with open(os.path.join(services, os.path.basename(install.bus_activation)), "w") as f:
        f.write(text)
    conf, state = os.path.join(scratch, "conf"), os.path.join(scratch, "state")
    os.makedirs(conf)
    os.makedirs(state)
    with open(os.path.join(conf, "safecad.conf"), "w") as f:
        f.write("[pkcs11]\nmodules = /usr/lib/softhsm/libsofthsm2.so\n")
    hsm = os.path.join(scratch, "hsm")
    os.makedirs(os.path.join(hsm, "tokens"))
    with open(os.path.join(hsm, "softhsm2.conf"), "w") as f:
        f.write(f"directories.tokendir = {hsm}/tokens\nobjectstore.backend = file\n")
    # Activated services inherit the bus's environment.
    env = dict(os.environ, CONFIGURATION_DIRECTORY=conf, STATE_DIRECTORY=state,
               SAFECAD_DATADIR=os.path.join(REPO, "data"),
               SOFTHSM2_CONF=os.path.join(hsm, "softhsm2.conf"),
               PCSCLITE_CSOCK_NAME=os.path.join(scratch, "no-pcscd"), **sanitizer_env())
    # dbus-daemon runs the service as its own user, root here: the policy
    # names root as the owner for this test.
    bus = PolicyBus(install, scratch, "root", servicedir=services, env=env)
    pid = None
    try:
        assert not bus.has_owner()
        r = bus.busctl(None, "--timeout=60", "get-property", BUS_NAME, "/org/safecad/Manager1",
                       "org.safecad.Manager1", "Version")
        assert r.returncode == 0, f"activation failed: {r.stdout}{r.stderr}\n{bus.log()}"
        assert r.stdout.strip() == f's "{project_version()}"', r.stdout
        r = bus.busctl(None, "call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                       "org.freedesktop.DBus", "GetConnectionUnixProcessID", "s", BUS_NAME)
        pid = int(r.stdout.split()[1])
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            assert f.read().split(b"\0")[0].decode() == install.path(install.daemon)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while running(pid):
            assert time.monotonic() < deadline, "safecad ignored SIGTERM"
            time.sleep(0.05)
    finally:
        if pid and running(pid):
            os.kill(pid, signal.SIGKILL)
        bus.stop()


def running(pid):
    """Alive, and not a zombie waiting for dbus-daemon to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


# --- polkit --------------------------------------------------------------


def test_polkit_policy_validates_against_the_dtd(install):
    xmllint = tool("xmllint")
    if not os.path.exists(POLICYCONFIG_DTD):
        pytest.skip(f"{POLICYCONFIG_DTD} is missing (polkitd)")
    r = run([xmllint, "--noout", "--nonet", "--dtdvalid", POLICYCONFIG_DTD,
             install.path(install.polkit_actions)])
    assert r.returncode == 0, r.stderr


def test_polkit_actions_defaults_translations_and_owner(install):
    root = ET.parse(install.path(install.polkit_actions)).getroot()
    lang = "{http://www.w3.org/XML/1998/namespace}lang"
    actions = {a.get("id"): a for a in root.findall("action")}
    assert set(actions) == set(ACTIONS)
    for action_id, defaults in ACTIONS.items():
        action = actions[action_id]
        d = action.find("defaults")
        assert (d.findtext("allow_any"), d.findtext("allow_inactive"),
                d.findtext("allow_active")) == defaults, action_id
        # safecad runs as its own user: polkit answers it about other
        # users' processes only when the action names it as an owner.
        owners = [a.text.split() for a in action.findall("annotate")
                  if a.get("key") == "org.freedesktop.policykit.owner"]
        assert owners == [[f"unix-user:{SERVICE_USER}"]], action_id
        for element in ("description", "message"):
            texts = {e.get(lang): e.text for e in action.findall(element)}
            assert set(texts) == {None, "vi"}, (action_id, element, texts)
            vi = texts["vi"]
            assert unicodedata.normalize("NFC", vi) == vi, (action_id, vi)
            assert any(unicodedata.decomposition(c) for c in vi), (
                f"{action_id} {element}: no Vietnamese diacritics in {vi!r}")
            assert vi != texts[None]


def test_polkit_rule_lets_only_the_service_user_reach_pcscd(install, scratch):
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("node is not installed")
    # polkit's own rule API, enough of it to run the file.
    script = os.path.join(scratch, "rule.js")
    with open(script, "w") as f:
        f.write(r"""
const fs = require("fs");
const rules = [];
const polkit = {
  Result: {NO: "no", YES: "yes", AUTH_SELF: "auth_self", AUTH_SELF_KEEP: "auth_self_keep",
           AUTH_ADMIN: "auth_admin", AUTH_ADMIN_KEEP: "auth_admin_keep", NOT_HANDLED: null},
  addRule: (f) => rules.push(f),
  addAdminRule: () => {},
  log: () => {},
};
new Function("polkit", fs.readFileSync(process.argv[2], "utf8"))(polkit);
const answers = {};
for (const user of ["safecad", "alice", "root"]) {
  for (const id of ["org.debian.pcsc-lite.access_pcsc", "org.debian.pcsc-lite.access_card",
                    "org.safecad.activate", "org.freedesktop.login1.reboot"]) {
    const subject = {user: user, local: false, active: false, groups: [],
                     isInGroup: () => false, isInNetGroup: () => false};
    let result = null;
    for (const rule of rules) {
      const r = rule({id: id, lookup: () => undefined}, subject);
      if (r !== undefined && r !== null) { result = r; break; }
    }
    answers[user + " " + id] = result;
  }
}
console.log(JSON.stringify(answers));
""")
    r = run([node, script, install.path(install.polkit_rule)])
    assert r.returncode == 0, r.stderr
    answers = json.loads(r.stdout)
    for key, result in answers.items():
        user, action = key.split()
        wanted = "yes" if user == SERVICE_USER and action.startswith("org.debian.pcsc") else None
        assert result == wanted, f"{key}: {result}"


# --- desktop entry, man pages, completion ----------------------------------


def test_autostart_entry_is_valid(install):
    validate = tool("desktop-file-validate")
    r = run([validate, install.path(install.autostart)])
    assert r.returncode == 0 and not r.stdout.strip(), r.stdout + r.stderr
    entry = unit_settings(install.read(install.autostart))
    assert entry["NoDisplay"] == ["true"] and entry["X-systemd-skip"] == ["true"]


def help_text():
    r = run([SAFECTL, "--help"], env=dict(os.environ, LANG="C.UTF-8", LANGUAGE=""))
    assert r.returncode == 0, r.stderr
    return r.stdout


def help_verbs_and_options():
    text = help_text()
    commands = text.split("Commands:", 1)[1].split("Options:", 1)[0]
    verbs = set(re.findall(r"^  ([a-z][a-z-]+)", commands, re.M))
    options = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+|-[a-z])\b", text.split("Options:", 1)[1]))
    assert {"status", "activate", "export"} <= verbs, text
    assert {"--json", "--pin-fd"} <= options, text
    return verbs, options


def test_man_pages_render_cleanly(install):
    if not install.man:
        pytest.skip("scdoc is not installed: no man pages are built")
    man = tool("man")
    for page in MAN_PAGES:
        r = run([man, "--warnings", "-l", install.path(os.path.join(install.mandir, page))],
                env=dict(os.environ, MANWIDTH="80", LANG="C.UTF-8"))
        assert r.returncode == 0 and not r.stderr.strip(), f"{page}: {r.stderr}"
        assert "NAME" in r.stdout and "SEE ALSO" in r.stdout, page


def test_safectl_man_page_documents_every_verb_option_and_exit_code(install):
    if not install.man:
        pytest.skip("scdoc is not installed: no man pages are built")
    page = run(["man", "-l", install.path(os.path.join(install.mandir, "man1/safectl.1"))],
               env=dict(os.environ, MANWIDTH="200", LANG="C.UTF-8")).stdout
    sections = dict(zip(*[iter(re.split(r"^([A-Z][A-Z ]+)$", page, flags=re.M)[1:])] * 2))
    commands, options, exits = sections["COMMANDS"], sections["OPTIONS"], sections["EXIT STATUS"]
    verbs, flags = help_verbs_and_options()
    documented = set(re.findall(r"^ {7}([a-z][a-z-]+)", commands, re.M))
    assert verbs == documented, f"safectl --help: {sorted(verbs)}, safectl(1): {sorted(documented)}"
    for flag in flags:
        assert re.search(rf"(?<![\w-]){re.escape(flag)}\b", options), f"{flag} missing"
    with open(os.path.join(REPO, "client", "safectl.h")) as f:
        codes = [int(n) for n in re.findall(r"EXIT_[A-Z_]+ = (\d+),", f.read())]
    assert codes == list(range(9)), codes
    assert re.findall(r"^ {7}(\d+)$", exits, re.M) == [str(n) for n in codes]


def complete(install, env, *words):
    """What bash offers after `words` (the last one being completed)."""
    script = (
        "source /usr/share/bash-completion/bash_completion\n"
        f"source {install.path(install.completion)}\n"
        'COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n'
        'COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}\n'
        "_safectl\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    r = run(["bash", "-c", script, "bash", *words], env=env)
    assert r.returncode == 0, r.stderr
    return [line for line in r.stdout.splitlines() if line]


def test_completion_offers_verbs_options_and_token_serials(install, world, pki):
    tool("bash")
    if not os.path.exists("/usr/share/bash-completion/bash_completion"):
        pytest.skip("bash-completion is not installed")
    verbs, flags = help_verbs_and_options()
    env = dict(os.environ, **world.client_env())
    assert set(complete(install, env, SAFECTL, "")) == verbs
    long_flags = {f for f in flags if f.startswith("--")}
    assert long_flags <= set(complete(install, env, SAFECTL, "--"))
    assert complete(install, env, SAFECTL, "--json", "sh") == ["show"]
    assert complete(install, env, SAFECTL, "agencies", "") == ["done"]

    token = world.softhsm.create_token("Completion")
    token.add_pair(pki.issue(days_left=40), "c1")
    other = world.softhsm.create_token("Second")
    world.start_daemon()
    serials = {token.serial, other.serial}
    assert set(complete(install, env, SAFECTL, "show", "")) == serials
    assert set(complete(install, env, SAFECTL, "--json", "export", "")) == serials
    assert complete(install, env, SAFECTL, "activate", "--yes", token.serial[:-1]) == [token.serial]
    # Nothing pending yet: no action ids to offer.
    assert complete(install, env, SAFECTL, "renew", token.serial, "") == []


def test_completion_reads_actions_and_agencies_from_the_json(install, scratch):
    """Pending actions, activations and agencies, from a stand-in safectl
    that prints the JSON documented in safectl(1)."""
    tool("bash")
    if not os.path.exists("/usr/share/bash-completion/bash_completion"):
        pytest.skip("bash-completion is not installed")
    status = {"tokens": [
        {"serial": "0a1b2c3d", "label": "An Phat", "pending": [
            {"id": "R-2026-1", "type": "renew", "unknown": 1}, {"id": "C-2026-2", "type": "change"}],
         "activation": {"action": "R-2025-9", "step": "written", "interrupted": True}},
        {"serial": "ffee", "label": "Other", "pending": [{"id": "X-1"}], "activation": None},
    ]}
    history = {"activations": [
        {"action": "R-2025-9", "agencies": [{"id": "tax", "done": True},
                                            {"id": "customs", "done": False}]},
        {"action": "R-2024-1", "agencies": [{"id": "insurance", "done": False}]},
    ]}
    stand_in = os.path.join(scratch, "safectl")
    with open(stand_in, "w") as f:
        f.write("#!/bin/sh\n"
                f"[ \"$*\" = '--json status' ] && exec cat <<'END'\n{json.dumps(status)}\nEND\n"
                f"[ \"$*\" = '--json history' ] && exec cat <<'END'\n{json.dumps(history)}\nEND\n"
                "exit 1\n")
    os.chmod(stand_in, 0o755)
    env = dict(os.environ)
    assert set(complete(install, env, stand_in, "activate", "0a1b2c3d", "")) == {
        "R-2026-1", "C-2026-2", "R-2025-9"}
    assert set(complete(install, env, stand_in, "renew", "An Phat", "R-")) == {
        "R-2026-1", "R-2025-9"}
    # Several tokens and none named: nothing to guess from.
    assert complete(install, env, stand_in, "change", "", "") == []
    assert complete(install, env, stand_in, "agencies", "done", "") == ["customs"]
    assert complete(install, env, stand_in, "--action", "R-2024-1", "agencies", "done", "") == [
        "insurance"]
    assert complete(install, env, stand_in, "agencies", "--action", "") == ["R-2025-9", "R-2024-1"]
    assert complete(install, env, stand_in, "--pin-fd", "3", "sh") == ["show"]
