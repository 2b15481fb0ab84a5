# SPDX-License-Identifier: LGPL-2.1-or-later
"""Faults that would lose the user's state or shut others out: a token
plugged in while another token's job holds the modules, remove-previous
killed at every step (and the moment the key's file goes), a caller that
leaves polkit queries behind, huge arrays, PIN descriptors that drip or
never deliver, terminal control sequences from tokens and certificates,
FIFOs where files should be, and state files that are damaged."""

import ctypes
import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from harness import bus as busmod
from harness.polkit import as_user, mock, polkit  # noqa: F401 - polkit is a fixture
from harness.refca import (  # noqa: F401 - refca is a fixture
    PIN, SAFECTL, certificates, check, find_cert, openssl_verify, private_keys, refca,
    serial_hex, sign_and_verify, start_activate, finish_activate, stopped_by_crash,
    token_with_pair, window)
from harness.safecad import REPO, find_token, wait_until

HOSTILE = os.path.join(REPO, "tests", "integration", "harness", "hostile.py")


def hostile(world, *args, uid=65534, timeout=300):
    run = as_user(world, ["/usr/bin/python3", HOSTILE, world.bus.address] + list(args),
                  uid=uid, timeout=timeout)
    assert run.returncode == 0, run
    return json.loads(run.stdout)


def token_path(world, serial):
    return find_token_path(world.bus.connection(), serial)


def find_token_path(conn, serial):
    for path in busmod.get_property(conn, busmod.MANAGER_PATH, busmod.MANAGER_IFACE, "Tokens"):
        if busmod.get_property(conn, path, busmod.TOKEN_IFACE, "Serial") == serial:
            return path
    raise AssertionError(f"token {serial} is not on the bus")


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


# --- 1. a token plugged in while another token's job runs -------------------

def test_token_inserted_while_another_activates_is_listed_when_it_ends(hotplug_world, pki,
                                                                       refca):
    w = hotplug_world
    token_a, old = token_with_pair(w, pki)
    refca.add_action(old, type="renew", **window())
    w.start_daemon()
    check(w, token_a.serial)
    # A's issue request takes 4 s: its job holds the modules meanwhile.
    refca.fault("issue", "slow", seconds=4)
    listener = w.listener()
    started = start_activate(w, token_a.serial)
    wait_until(lambda: (find_token(w.status(), token_a.serial)["activation"] or {}).get("step")
               == "csr-sent", message="A's request at the CA")

    # Token B arrives now: with SoftHSM (as with many vendor modules) a
    # module loaded before B was made does not show it.
    token_b, _ = token_with_pair(w, pki, label="Token B")
    w.insert_card()
    run = finish_activate(started)
    assert run.rc == 0, run
    ended = time.monotonic()
    added = listener.wait_for("TokenAdded", token_b.serial, timeout=15)
    print(f"TokenAdded for B {added.time - ended:+.3f} s after A's activation ended")
    assert added.time - ended <= 2.0
    assert find_token(w.status(), token_b.serial)["present"] is True


# --- 2. remove-previous killed at every step --------------------------------

def renewed(world, pki, refca, **daemon_env):
    token, old = token_with_pair(world, pki)
    refca.add_action(old, type="renew", **window())
    world.start_daemon(**daemon_env)
    check(world, token.serial)
    started = start_activate(world, token.serial)
    run = finish_activate(started)
    assert run.rc == 0, run
    return token, old, refca.requests("issue")[-1]["issued_serial"]


def remove(world, *extra):
    r, w = os.pipe()
    os.write(w, (PIN + "\n").encode())
    os.close(w)
    try:
        return subprocess.run([SAFECTL, "remove-previous", "--yes", "--force", "--pin-fd",
                               str(r)] + list(extra), env=world.client_env(),
                              capture_output=True, text=True, timeout=60, pass_fds=(r,))
    finally:
        os.close(r)


def has_cert(token, serial):
    return any(serial_hex(c) == serial for _, c in certificates(token))


def assert_current_pair_works(world, pki, token, new_serial):
    new_obj, new_cert = find_cert(token, new_serial)
    sign_and_verify(token, new_obj["id"], new_cert)
    openssl_verify(pki, new_cert, world.dir)
    return new_obj


def token_folder(world, token):
    """SoftHSM keeps each token in a folder of its own, an object a file."""
    for folder, _, files in os.walk(world.softhsm.directory):
        if "token.object" not in files:
            continue
        with open(os.path.join(folder, "token.object"), "rb") as f:
            if token.serial.encode() in f.read():
                return folder
    raise AssertionError(f"no SoftHSM folder for {token}")


class KillOnFirstDelete:
    """SIGKILLs a process the moment the first object file disappears
    from a folder (inotify)."""

    IN_DELETE, IN_MOVED_FROM = 0x200, 0x40

    def __init__(self, folder, pid):
        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(os.O_CLOEXEC)
        assert self.fd >= 0
        assert libc.inotify_add_watch(self.fd, folder.encode(),
                                      self.IN_DELETE | self.IN_MOVED_FROM) >= 0
        self.pid = pid
        self.deleted = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            data = os.read(self.fd, 4096)
            offset = 0
            while offset < len(data):
                length = int.from_bytes(data[offset + 12:offset + 16], "little")
                name = data[offset + 16:offset + 16 + length].rstrip(b"\0").decode()
                offset += 16 + length
                if name.endswith(".object") and name != "token.object":
                    os.kill(self.pid, signal.SIGKILL)
                    self.deleted = name
                    return

    def close(self):
        os.close(self.fd)


def test_killed_the_moment_the_key_file_goes(world, pki, refca):
    token, old, new_serial = renewed(world, pki, refca)
    daemon = world.daemons[-1]
    keys_before = {k["id"] for k in private_keys(token)}
    killer = KillOnFirstDelete(token_folder(world, token), daemon.pid)
    try:
        run = remove(world)
        assert run.returncode != 0, run
        assert stopped_by_crash(daemon) == -9
    finally:
        killer.close()
    assert killer.deleted
    world.start_daemon()  # its first scan finishes what needs no PIN
    new_obj = assert_current_pair_works(world, pki, token, new_serial)
    keys = {k["id"] for k in private_keys(token)}
    # The key went first: the certificate follows it, with no command.
    assert not has_cert(token, old.serial), "the replaced certificate stayed without its key"
    assert keys == {new_obj["id"]}, (keys_before, keys)
    t = find_token(world.status(), token.serial)
    assert [c["serial"] for c in t["certificates"]] == [new_serial], t


@pytest.mark.parametrize("step", ["removal-started", "removal-removing-key",
                                  "removal-key-gone"])
def test_killed_at_every_journal_step(world, pki, refca, step):
    token, old, new_serial = renewed(world, pki, refca, SAFECAD_TEST_CRASH_AT=step)
    daemon = world.daemons[-1]
    run = remove(world)
    assert run.returncode != 0, run
    assert stopped_by_crash(daemon) == -9
    world.start_daemon()
    new_obj = assert_current_pair_works(world, pki, token, new_serial)
    keys = {k["id"] for k in private_keys(token)}
    if step == "removal-started":
        # Nothing was touched: both stay, and both work.
        assert has_cert(token, old.serial) and keys == {"01", new_obj["id"]}, keys
        sign_and_verify(token, "01", old.cert)
        return
    # The certificate goes without a PIN at the first scan.
    assert not has_cert(token, old.serial)
    if step == "removal-removing-key":
        # The key may still be there: a private object needs the login,
        # which the next command that logs in brings.
        assert keys == {"01", new_obj["id"]}, keys
        run = remove(world)
        assert run.returncode == 0 and "interrupted" in run.stdout, run
        keys = {k["id"] for k in private_keys(token)}
    assert keys == {new_obj["id"]}, keys
    assert not os.listdir(os.path.join(world.statedir, "removals"))


# --- 4. polkit queries a caller leaves behind --------------------------------

def test_polkit_queries_are_dropped_on_every_path(world, pki, refca, polkit):
    token, old = token_with_pair(world, pki)
    daemon = world.start_daemon()
    polkit("org.safecad.change-pin")
    # polkit answers after 0.1 s; the check the caller starts right after
    # takes 0.3 s at the CA, so the answer meets a busy token.
    mock(world, "SetDelay", "d", "0.1")
    refca.fault("pending", "slow", count=70, seconds=0.3)
    fds_before = open_fds(daemon.pid)
    out = hostile(world, "change-pin-then-check", token_path(world, token.serial), "70")
    answers = out["answers"]
    assert answers.get("org.safecad.Error.Busy", 0) > 0, answers
    mock(world, "SetDelay", "d", "0")
    # Nobody is shut out afterwards (the same user included: every query
    # the rounds left is gone), and nothing is held.
    polkit()
    out = hostile(world, "change-pin-burst", token_path(world, token.serial), "1")
    assert out["answers"] == {"org.freedesktop.DBus.Error.AccessDenied": 1}, out
    wait_until(lambda: open_fds(daemon.pid) <= fds_before + 2,
               message=f"descriptors back to {fds_before}")


def hanging_calls(world):
    run = subprocess.run(["busctl", f"--address={world.bus.address}", "--json=short", "call",
                          "org.freedesktop.PolicyKit1", "/org/freedesktop/PolicyKit1/Authority",
                          "org.freedesktop.DBus.Mock", "HaveHangingCalls"],
                         capture_output=True, text=True, check=True)
    return json.loads(run.stdout)["data"][0]


def test_polkit_limit_is_per_caller(world, pki, polkit):
    token, old = token_with_pair(world, pki)
    world.start_daemon()
    polkit()
    mock(world, "SimulateHang", "b", "true")
    path = token_path(world, token.serial)
    results = {}

    def burst(name, uid, count):
        try:
            results[name] = hostile(world, "change-pin-burst", path, str(count), uid=uid)
        except AssertionError as e:
            results[name] = {"failed": str(e)}

    nobody = threading.Thread(target=burst, args=("nobody", 65534, 24))
    nobody.start()
    wait_until(lambda: hanging_calls(world), message="questions at polkit")
    time.sleep(2)  # for all of them to be asked
    # Another user is not crowded out by the first.
    other = threading.Thread(target=burst, args=("other", 1, 1))
    other.start()
    time.sleep(2)
    mock(world, "SimulateHang", "b", "false")
    mock(world, "ReleaseHangingCalls")
    nobody.join(120)
    other.join(120)
    assert results["other"].get("answers") == {"org.freedesktop.DBus.Error.AccessDenied": 1}, results
    answers = results["nobody"]["answers"]
    assert answers.get("org.freedesktop.DBus.Error.LimitsExceeded", 0) == 8, answers
    assert answers.get("org.freedesktop.DBus.Error.AccessDenied", 0) == 16, answers


# --- 5. huge arrays ------------------------------------------------------------

def test_a_huge_array_is_refused_before_it_is_read(world, pki):
    token, _ = token_with_pair(world, pki)
    daemon = world.start_daemon()
    cpu_before = daemon.cpu_seconds()
    out = hostile(world, "tick-huge", "1000000")
    cpu = daemon.cpu_seconds() - cpu_before
    print(f"TickAgencies with 1 000 000 ids: {out}; safecad's CPU {cpu:.2f} s")
    assert out["error"] == "org.freedesktop.DBus.Error.InvalidArgs", out
    # The bus daemon's own checks of such a message take a while; safecad
    # takes little of it (reading the whole array took minutes of CPU).
    assert cpu < 10, cpu
    conn = world.bus.connection()
    assert busmod.get_property(conn, busmod.MANAGER_PATH, busmod.MANAGER_IFACE, "Tokens")


# --- 6. PIN descriptors that drip or never deliver ------------------------------

def change_pin_with_fd(conn, path, fd):
    from gi.repository import Gio, GLib
    fds = Gio.UnixFDList()
    fds.append(fd)
    good_r, good_w = os.pipe()
    os.write(good_w, b"Moi-2468\n")
    os.close(good_w)
    fds.append(good_r)
    os.close(good_r)
    t0 = time.monotonic()
    try:
        conn.call_with_unix_fd_list_sync(
            busmod.BUS_NAME, path, busmod.TOKEN_IFACE, "ChangePin",
            GLib.Variant("(hha{sv})", (0, 1, {})), None, Gio.DBusCallFlags.NONE, 120000,
            fds, None)
        return "ok", "", time.monotonic() - t0
    except GLib.Error as e:
        return Gio.DBusError.get_remote_error(e), e.message, time.monotonic() - t0


def test_pin_descriptors_that_never_deliver(world, pki):
    kinds = ["fifo", "open-pipe", "socket", "drip", "dev-zero", "directory"]
    tokens = {kind: token_with_pair(world, pki, label=f"T {kind}")[0] for kind in kinds}
    world.start_daemon()
    keep = []
    fifo = os.path.join(world.dir, "pin.fifo")
    os.mkfifo(fifo)
    stop = threading.Event()

    def descriptor(kind):
        if kind == "fifo":
            keep.append(os.open(fifo, os.O_RDWR))  # a writer that never writes
            return os.open(fifo, os.O_RDONLY)
        if kind == "open-pipe":
            r, w = os.pipe()
            keep.append(w)
            return r
        if kind == "socket":
            a, b = socket.socketpair()
            keep.append(b.detach())
            return a.detach()
        if kind == "drip":
            r, w = os.pipe()

            def drip():
                while not stop.wait(5):
                    try:
                        os.write(w, b"1")
                    except OSError:
                        return
            threading.Thread(target=drip, daemon=True).start()
            keep.append(w)
            return r
        if kind == "dev-zero":
            return os.open("/dev/zero", os.O_RDONLY)
        return os.open(world.dir, os.O_RDONLY | os.O_DIRECTORY)

    results = {}

    def call(kind):
        conn = busmod.connect(world.bus.address)
        fd = descriptor(kind)
        results[kind] = change_pin_with_fd(conn, token_path(world, tokens[kind].serial), fd)
        os.close(fd)

    threads = [threading.Thread(target=call, args=(k,)) for k in kinds]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    stop.set()
    for fd in keep:
        os.close(fd)
    for kind in kinds:
        name, message, seconds = results[kind]
        print(f"{kind}: {name} after {seconds:.1f} s: {message}")
        assert name == "org.safecad.Error.Failed", (kind, results[kind])
        assert "PIN" in message, (kind, message)
        # One limit for the whole PIN (30 s), however it drips.
        assert seconds < 45, (kind, seconds)
    assert "in time" in results["drip"][1]
    assert "too long" in results["dev-zero"][1]
    conn = world.bus.connection()
    for kind in kinds:
        path = token_path(world, tokens[kind].serial)
        assert busmod.get_property(conn, path, busmod.TOKEN_IFACE, "Busy") is False


# --- 7. terminal control sequences ---------------------------------------------

CONTROLS = ("\x1b", "\x07", "\r", "\u009b", "\u202e", "\u2066")


def test_token_and_certificate_text_reaches_the_terminal_clean(world, pki):
    label = "A\x1b[2J\x07B\u202eC"
    subject = [["C", "VN"], ["O", "Cong ty\x1b]0;pwned\x07 An\u009b31m Phat\r"],
               ["CN", "Nguyen\u2066 Van A"]]
    token, _ = token_with_pair(world, pki, label=label, subject=subject)
    world.start_daemon()
    for args in (("status",), ("show",), ("pin",), ("history",)):
        rc, out, err = world.safectl(*args)
        assert rc in (0, 2), (args, rc, err)
        for c in CONTROLS:
            assert c not in out and c not in err, (args, repr(c), out)
    rc, out, err = world.safectl("show")
    assert "Cong ty]0;pwned An31m Phat" in out, out
    # Scripts get the token's and the certificate's own text.
    t = find_token(world.status(), token.serial)
    assert t["label"] == label
    assert dict(t["certificates"][0]["subject"])["O"] == subject[1][1]


# --- 8. a FIFO where a file should be ----------------------------------------------

def test_fifos_where_files_should_be(world, pki):
    token, _ = token_with_pair(world, pki)
    folder = os.path.join(world.confdir, "ca.d")
    os.mkfifo(os.path.join(folder, "fifo.conf"))
    with open(os.path.join(folder, "other.conf"), "w") as f:
        f.write("[ca]\nname = Other\nissuers = other-issuers.pem\n")
    os.mkfifo(os.path.join(folder, "other-issuers.pem"))
    os.mkfifo(os.path.join(world.statedir, "history.json"))
    daemon = world.start_daemon()
    log = daemon.log()
    for name in ("fifo.conf", "other-issuers.pem"):
        assert any(name in line and "not a regular file" in line
                   for line in log.splitlines()), log
    assert find_token(world.status(), token.serial)["profile"] == "SAFE-CA"
    # GetHistory answers (a new history), the FIFO is kept aside.
    rc, out, err = world.safectl("history", json_out=True)
    assert rc == 0 and json.loads(out) == {"activations": []}, (rc, out, err)
    assert any(n.startswith("history.json.damaged-") for n in os.listdir(world.statedir))
    assert "history.json" in daemon.log()


def test_a_fifo_for_the_configuration_stops_with_its_name(world):
    path = os.path.join(world.confdir, "safecad.conf")
    os.unlink(path)
    os.mkfifo(path)
    daemon = world.start_daemon(wait=False)
    rc = daemon.wait_exit(timeout=20)
    daemon.checked = True
    assert rc != 0
    assert f"{path}: not a regular file" in daemon.log()


# --- 9. damaged state files ----------------------------------------------------------

def journal_name(serial, action):
    return f"{serial.encode().hex()}.{action}.json"


def good_journal(serial, action="renew-1"):
    return {"version": 1, "token": serial, "action_id": action,
            "action": {"id": action, "type": "renew"}, "profile": "safe-ca.conf",
            "old_serial": "1a2b", "old_key_id": "01", "step": "key-ready",
            "keep_previous": True, "started": "2026-12-01T00:00:00Z",
            "module": "/usr/lib/softhsm/libsofthsm2.so",
            "token_info": {"label": "L", "manufacturer": "M", "model": "X"},
            "new_key_id": "a1b2"}


@pytest.mark.parametrize("damage", ["long-serial", "truncated", "garbage", "10MB", "symlink",
                                    "directory", "wrong-name", "control-chars"])
def test_damaged_activation_journal_is_set_aside(world, pki, damage):
    token, _ = token_with_pair(world, pki)
    folder = os.path.join(world.statedir, "activations")
    os.makedirs(folder)
    good = good_journal("GOODSERIAL00001")
    with open(os.path.join(folder, journal_name("GOODSERIAL00001", "renew-1")), "w") as f:
        json.dump(good, f)
    serial = "S" * 100000 if damage == "long-serial" else "BADSERIAL000001"
    bad = good_journal(serial)
    path = os.path.join(folder, journal_name(serial if damage != "long-serial" else "X",
                                             "renew-1"))
    text = json.dumps(bad)
    if damage == "truncated":
        text = text[:len(text) // 2]
    elif damage == "garbage":
        text = "\x00\xff garbage {"
    elif damage == "10MB":
        text = json.dumps(dict(bad, padding="x" * (10 * 1024 * 1024)))
    elif damage == "wrong-name":
        path = os.path.join(folder, journal_name("OTHERSERIAL0001", "renew-1"))
    elif damage == "control-chars":
        text = json.dumps(dict(bad, token="BAD\x1b[2J"))
    if damage == "symlink":
        target = os.path.join(world.dir, "elsewhere.json")
        with open(target, "w") as f:
            f.write(text)
        os.symlink(target, path)
    elif damage == "directory":
        os.makedirs(path)
    else:
        with open(path, "w") as f:
            f.write(text)
    daemon = world.start_daemon()
    # Every client still reads the tokens: the good journal's absent
    # token and the plugged-in one.
    tokens = world.status()
    serials = {t["serial"] for t in tokens}
    assert serials == {token.serial, "GOODSERIAL00001"}, serials
    log = daemon.log()
    assert any(os.path.basename(path) in line and "kept as" in line
               for line in log.splitlines()), log
    # The evidence is kept beside, under another name.
    assert not os.path.lexists(path)
    assert any(n.startswith(os.path.basename(path) + ".damaged-") for n in os.listdir(folder))


@pytest.mark.parametrize("damage", ["garbage", "wrong-types", "symlink", "directory"])
def test_damaged_history_is_set_aside(world, pki, damage):
    token, _ = token_with_pair(world, pki)
    path = os.path.join(world.statedir, "history.json")
    entry = {"action": "a1", "type": "renew", "token": "T", "old_serial": "1",
             "new_serial": "2", "completed": None, "agencies": [{"id": "tax"}]}
    if damage == "symlink":
        target = os.path.join(world.dir, "h.json")
        with open(target, "w") as f:
            json.dump({"activations": []}, f)
        os.symlink(target, path)
    elif damage == "directory":
        os.makedirs(path)
    else:
        with open(path, "w") as f:
            f.write("{{{" if damage == "garbage" else json.dumps({"activations": [entry]}))
    daemon = world.start_daemon()
    rc, out, err = world.safectl("history", json_out=True)
    assert rc == 0 and json.loads(out) == {"activations": []}, (out, err)
    assert "history.json" in daemon.log() and "kept as" in daemon.log()
    assert any(n.startswith("history.json.damaged-") for n in os.listdir(world.statedir))


def test_damaged_removal_journal_is_set_aside(world, pki):
    token, _ = token_with_pair(world, pki)
    folder = os.path.join(world.statedir, "removals")
    os.makedirs(folder)
    path = os.path.join(folder, token.serial.encode().hex() + ".json")
    with open(path, "w") as f:
        json.dump({"token": token.serial, "step": "key-gone", "module": "x" * 100000}, f)
    daemon = world.start_daemon()
    find_token(world.status(), token.serial)
    assert "kept as" in daemon.log()
    assert not os.path.exists(path)
    assert len(private_keys(token)) == 1 and len(certificates(token)) == 1


# --- hostile callers: Check without limit, malformed arguments, a flood ---------

def test_check_from_a_user_asks_the_ca_a_bounded_number_of_times(world, pki, refca):
    token, old = token_with_pair(world, pki)
    refca.add_action(old, type="renew", **window())
    world.start_daemon()
    check(world, token.serial)  # root: always asks
    before = len(refca.requests("pending"))
    out = hostile(world, "checks", token_path(world, token.serial), "40")
    assert out["answers"] == {"ok": 40}, out
    asked = len(refca.requests("pending")) - before
    print(f"40 Check() calls from a user asked the CA {asked} times")
    assert asked <= 11, asked
    # Root is never held back.
    check(world, token.serial)
    assert len(refca.requests("pending")) == before + asked + 1


def call_with_fds(conn, path, iface, method, signature, args, fd_count=1):
    from gi.repository import Gio, GLib
    fds = Gio.UnixFDList()
    for _ in range(fd_count):
        r, w = os.pipe()
        os.write(w, (PIN + "\n").encode())
        os.close(w)
        fds.append(r)
        os.close(r)
    try:
        conn.call_with_unix_fd_list_sync(
            busmod.BUS_NAME, path, iface, method,
            GLib.Variant(signature, args) if signature else None, None,
            Gio.DBusCallFlags.NONE, 30000, fds, None)
        return "ok"
    except GLib.Error as e:
        return Gio.DBusError.get_remote_error(e)


def test_malformed_arguments_get_a_named_error_and_change_nothing(world, pki, refca):
    from gi.repository import GLib
    token, old = token_with_pair(world, pki)
    action = refca.add_action(old, type="renew", **window())
    world.start_daemon()
    check(world, token.serial)
    before = certificates(token), private_keys(token)
    conn = world.bus.connection()
    path = token_path(world, token.serial)
    T, M = busmod.TOKEN_IFACE, busmod.MANAGER_IFACE
    b = GLib.Variant("b", True)
    invalid = "org.freedesktop.DBus.Error.InvalidArgs"
    cases = [
        (path, T, "Activate", "(sha{sv})", ("", 0, {}), invalid),
        (path, T, "Activate", "(sha{sv})", ("a" * 65, 0, {}), invalid),
        (path, T, "Activate", "(sha{sv})", ("a b;rm", 0, {}), invalid),
        (path, T, "Activate", "(sha{sv})", (action["id"], 0, {"bogus": b}), invalid),
        (path, T, "Activate", "(sha{sv})",
         (action["id"], 0, {"keep_previous": GLib.Variant("s", "yes")}), invalid),
        (path, T, "Activate", "(sha{sv})",
         (action["id"], 0, {"keep_previous": GLib.Variant("as", ["x"] * 100000)}), invalid),
        (path, T, "Activate", "(s)", (action["id"],), invalid),
        (path, T, "ChangePin", "(hha{sv})", (0, 1, {"force": b}), invalid),
        (path, T, "RemovePrevious", "(ha{sv})", (0, {"force": GLib.Variant("i", 1)}), invalid),
        (path, T, "Export", "(s)", ("x",), invalid),
        (busmod.MANAGER_PATH, M, "TickAgencies", "(sas)", ("", []), invalid),
        (busmod.MANAGER_PATH, M, "TickAgencies", "(sas)", ("", ["tax"] * 65), invalid),
        (busmod.MANAGER_PATH, M, "TickAgencies", "(sas)", ("a" * 100, ["tax"]), invalid),
        (busmod.MANAGER_PATH, M, "TickAgencies", "(sas)", ("", ["tax"]),
         "org.safecad.Error.NothingToDo"),
        (busmod.MANAGER_PATH, M, "Rescan", "(s)", ("now",), invalid),
        (busmod.MANAGER_PATH, M, "GetHistory", "(i)", (1,), invalid),
    ]
    for target, iface, method, signature, args, expected in cases:
        got = call_with_fds(conn, target, iface, method, signature, args,
                            fd_count=2 if method == "ChangePin" else 1)
        assert got == expected, (method, str(args)[:80], got)
    # A descriptor index that is not in the message.
    got = call_with_fds(conn, path, T, "Activate", "(sha{sv})", (action["id"], 7, {}))
    assert got.startswith("org.freedesktop.DBus.Error."), got
    assert (certificates(token), private_keys(token)) == before
    assert refca.requests("issue") == []
    assert not os.path.exists(os.path.join(world.statedir, "activations")) or \
        not os.listdir(os.path.join(world.statedir, "activations"))
    assert find_token(world.status(), token.serial)["activation"] is None


def test_a_thousand_calls_at_once(world, pki, refca):
    token, old = token_with_pair(world, pki)
    refca.add_action(old, type="renew", **window())
    world.start_daemon()
    path = token_path(world, token.serial)
    conn = busmod.connect(world.bus.address)
    latencies = []
    done = threading.Event()

    def reader():
        while not done.is_set():
            t0 = time.monotonic()
            busmod.get_property(conn, path, busmod.TOKEN_IFACE, "DaysLeft")
            latencies.append(time.monotonic() - t0)
            time.sleep(0.02)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        out = hostile(world, "flood", path, "10", "100")
    finally:
        done.set()
        thread.join(60)
    latencies.sort()
    print(f"1000 calls at once: {out}; a reader's p50 "
          f"{latencies[len(latencies) // 2] * 1000:.1f} ms, max {latencies[-1] * 1000:.0f} ms")
    answers = out["answers"]
    assert sum(answers.values()) == 1000, answers
    # Every call is answered: a result, or Busy for a Check beyond the
    # ones that share a running check.
    assert set(answers) <= {"ok", "org.safecad.Error.Busy"}, answers
    assert answers["ok"] >= 800, answers
    assert find_token(world.status(), token.serial)["present"] is True
