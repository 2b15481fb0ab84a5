# SPDX-License-Identifier: LGPL-2.1-or-later
"""The guide's "check the issued certificate's details → Confirm": an
activation may stop once the certificate is checked and write it only on
its caller's yes. safectl asks without --yes; no, a caller that leaves the
bus and a caller that stays silent write nothing and leave the activation
interrupted at `verified`, resumable with the PIN and the same key."""

import json
import os
import subprocess
import threading
import time

from gi.repository import Gio, GLib

from harness import bus as busmod
from harness.refca import (  # noqa: F401 - refca is a fixture
    PIN, SAFECTL, activate, assert_unchanged, certificates, check, find_cert, private_keys,
    refca, serial_hex, sign_and_verify, snapshot, token_with_pair, window)
from harness.safecad import config_text, find_token


def interactive(world, token, answers, *extra):
    r, w = os.pipe()
    os.write(w, (PIN + "\n").encode())
    os.close(w)
    try:
        return subprocess.run([SAFECTL, "activate", token.serial, "--pin-fd", str(r)] +
                              list(extra), input=answers, env=world.client_env(),
                              capture_output=True, text=True, timeout=120, pass_fds=(r,))
    finally:
        os.close(r)


def activation_of(world, token):
    return find_token(world.status(), token.serial)["activation"]


def test_safectl_shows_the_certificate_and_writes_on_yes(world, pki, refca):
    token, old = token_with_pair(world, pki)
    refca.add_action(old, type="renew", **window())
    world.start_daemon()
    check(world, token.serial)
    run = interactive(world, token, "y\ny\ny\n")
    assert run.returncode == 0, run
    new_serial = refca.requests("issue")[-1]["issued_serial"]
    assert "Write this certificate to the token?" in run.stdout, run.stdout
    # The details come before the question, and "written" after it.
    question = run.stdout.index("Write this certificate")
    assert new_serial in run.stdout[:question], run.stdout
    assert "CN=" in run.stdout[:question] and "Issuer:" in run.stdout[:question]
    assert run.stdout.index("Certificate written") > question, run.stdout
    obj, cert = find_cert(token, new_serial)
    sign_and_verify(token, obj["id"], cert)


def test_no_writes_nothing_and_the_same_key_is_written_later(world, pki, refca):
    token, old = token_with_pair(world, pki)
    refca.add_action(old, type="renew", **window())
    world.start_daemon()
    check(world, token.serial)
    certificates_before = [serial_hex(c) for _, c in certificates(token)]
    run = interactive(world, token, "y\ny\nn\n")
    assert run.returncode == 2, run
    assert "Nothing was written" in run.stdout, run.stdout
    assert [serial_hex(c) for _, c in certificates(token)] == certificates_before
    a = activation_of(world, token)
    assert a["step"] == "verified" and a["interrupted"] is True, a
    keys = {k["id"] for k in private_keys(token)}
    assert len(refca.requests("issue")) == 1

    # Resumed with the PIN: the kept certificate is written, with the key
    # made for it; the CA is not asked again.
    run = activate(world, token.serial)
    assert run.rc == 0, run
    assert len(refca.requests("issue")) == 1
    new_serial = refca.requests("issue")[-1]["issued_serial"]
    obj, cert = find_cert(token, new_serial)
    assert obj["id"] in keys and {k["id"] for k in private_keys(token)} == keys
    sign_and_verify(token, obj["id"], cert)
    assert activation_of(world, token) is None


def test_no_on_a_recertified_key_leaves_the_token_as_it_was(world, pki, refca):
    token, old = token_with_pair(world, pki)
    refca.add_action(old, type="change", key={"generate": False, "type": "rsa", "bits": 2048},
                     **window())
    world.start_daemon()
    check(world, token.serial)
    before = snapshot(token)
    run = interactive(world, token, "y\ny\nn\n")
    assert run.returncode == 2, run
    assert_unchanged(token, before)


class Caller:
    """A client that calls Activate with confirm_before_write itself."""

    def __init__(self, world, token):
        self.conn = busmod.connect(world.bus.address)
        self.path = next(p for p in busmod.get_property(
            self.conn, busmod.MANAGER_PATH, busmod.MANAGER_IFACE, "Tokens")
            if busmod.get_property(self.conn, p, busmod.TOKEN_IFACE, "Serial") == token.serial)
        self.requested = threading.Event()
        self.certificate = None
        self.result = None
        self.conn.signal_subscribe(busmod.BUS_NAME, busmod.TOKEN_IFACE, "WriteRequested",
                                   self.path, None, Gio.DBusSignalFlags.NONE, self._on_request,
                                   None)
        self.loop = GLib.MainLoop()
        threading.Thread(target=self.loop.run, daemon=True).start()

    def _on_request(self, conn, sender, path, iface, member, params, data):
        self.certificate = json.loads(params.unpack()[1])
        self.requested.set()

    def activate(self, action_id):
        fds = Gio.UnixFDList()
        r, w = os.pipe()
        os.write(w, (PIN + "\n").encode())
        os.close(w)
        fds.append(r)
        os.close(r)
        done = threading.Event()

        def on_reply(source, result, _):
            try:
                source.call_with_unix_fd_list_finish(result)
                self.result = "ok"
            except GLib.Error as e:
                self.result = (Gio.DBusError.get_remote_error(e), e.message)
            done.set()

        self.conn.call_with_unix_fd_list(
            busmod.BUS_NAME, self.path, busmod.TOKEN_IFACE, "Activate",
            GLib.Variant("(sha{sv})", (action_id, 0, {
                "confirm_before_write": GLib.Variant("b", True)})),
            None, Gio.DBusCallFlags.NONE, 300000, fds, None, on_reply, None)
        return done

    def close(self):
        self.conn.close_sync(None)
        self.loop.quit()


def test_a_caller_that_goes_away_writes_nothing(world, pki, refca):
    token, old = token_with_pair(world, pki)
    action = refca.add_action(old, type="renew", **window())
    world.start_daemon()
    check(world, token.serial)
    caller = Caller(world, token)
    caller.activate(action["id"])
    assert caller.requested.wait(60)
    assert caller.certificate["serial"] == refca.requests("issue")[-1]["issued_serial"]
    assert caller.certificate["old_serial"] == serial_hex(old.cert)
    conn = world.bus.connection()
    assert json.loads(busmod.get_property(conn, caller.path, busmod.TOKEN_IFACE,
                                          "IssuedCertificate"))["serial"] == \
        caller.certificate["serial"]
    # Nobody else may answer for it.
    try:
        busmod.call(conn, caller.path, busmod.TOKEN_IFACE, "ConfirmWrite",
                    GLib.Variant("(sb)", (action["id"], True)))
        raise AssertionError("another connection's ConfirmWrite was taken")
    except GLib.Error as e:
        assert Gio.DBusError.get_remote_error(e) == "org.freedesktop.DBus.Error.AccessDenied"
    caller.close()
    deadline = time.monotonic() + 30
    while busmod.get_property(conn, caller.path, busmod.TOKEN_IFACE, "Busy"):
        assert time.monotonic() < deadline, "the activation still waits for a caller gone"
        time.sleep(0.1)
    assert busmod.get_property(conn, caller.path, busmod.TOKEN_IFACE, "IssuedCertificate") == ""
    assert len(certificates(token)) == 1
    a = activation_of(world, token)
    assert a["step"] == "verified" and a["interrupted"] is True, a
    assert "went away" in world.daemons[-1].log()


def test_a_silent_caller_writes_nothing_after_the_limit(world, pki, refca):
    world.write_config(config_text() + "[activation]\nconfirm_timeout = 5\n")
    token, old = token_with_pair(world, pki)
    action = refca.add_action(old, type="renew", **window())
    world.start_daemon()
    check(world, token.serial)
    caller = Caller(world, token)
    done = caller.activate(action["id"])
    assert caller.requested.wait(60)
    t0 = time.monotonic()
    assert done.wait(60)
    print(f"answered NotWritten {time.monotonic() - t0:.1f} s after WriteRequested")
    assert caller.result[0] == "org.safecad.Error.NotWritten", caller.result
    assert "in time" in caller.result[1]
    assert len(certificates(token)) == 1
    assert activation_of(world, token)["step"] == "verified"
    caller.close()


def test_a_daemon_stopped_while_waiting_writes_nothing(world, pki, refca):
    token, old = token_with_pair(world, pki)
    action = refca.add_action(old, type="renew", **window())
    daemon = world.start_daemon()
    check(world, token.serial)
    caller = Caller(world, token)
    caller.activate(action["id"])
    assert caller.requested.wait(60)
    # SIGTERM stops it promptly and cleanly, with nothing written.
    assert daemon.stop() < 5
    caller.close()
    assert len(certificates(token)) == 1
    world.start_daemon()
    a = activation_of(world, token)
    assert a["step"] == "verified" and a["interrupted"] is True, a
