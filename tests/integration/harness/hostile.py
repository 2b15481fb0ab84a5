# SPDX-License-Identifier: LGPL-2.1-or-later
"""A hostile local caller, run as an unprivileged user (setpriv) on the
test's private bus: `python3 hostile.py ADDRESS COMMAND ARGS...` prints one
JSON object with what happened."""

import json
import os
import sys
import time

from gi.repository import Gio, GLib

BUS_NAME = "org.safecad.Manager1"
MANAGER_PATH = "/org/safecad/Manager1"
TOKEN_IFACE = "org.safecad.Token1"


def connect(address):
    return Gio.DBusConnection.new_for_address_sync(
        address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
        | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)


def error_name(e):
    return Gio.DBusError.get_remote_error(e) or str(e)


def pin_fd_list():
    fds = Gio.UnixFDList()
    for _ in range(2):
        r, w = os.pipe()
        os.write(w, b"123456\n")
        os.close(w)
        fds.append(r)
        os.close(r)
    return fds


class Answers:
    """Counts the answers to calls made with call_with_unix_fd_list, by
    error name ("ok" for a return), and quits loop after expected."""

    def __init__(self, loop, expected):
        self.loop = loop
        self.left = expected
        self.counts = {}

    def add(self, name):
        self.counts[name] = self.counts.get(name, 0) + 1

    def done(self, source, result, _):
        try:
            source.call_with_unix_fd_list_finish(result)
            self.add("ok")
        except GLib.Error as e:
            self.add(error_name(e))
        self.left -= 1
        if self.left == 0:
            self.loop.quit()


def change_pin(conn, path, answers):
    conn.call_with_unix_fd_list(
        BUS_NAME, path, TOKEN_IFACE, "ChangePin", GLib.Variant("(hha{sv})", (0, 1, {})), None,
        Gio.DBusCallFlags.NONE, 60000, pin_fd_list(), None, answers.done, None)


def wait(loop):
    GLib.timeout_add_seconds(120, loop.quit)
    loop.run()


def change_pin_then_check(conn, path, rounds):
    """ChangePin, and at once Check on the same token: when polkit's
    answer comes, the token is busy with the check."""
    loop = GLib.MainLoop()
    answers = Answers(loop, rounds)
    for _ in range(rounds):
        change_pin(conn, path, answers)
        try:
            conn.call_sync(BUS_NAME, path, TOKEN_IFACE, "Check", None, None,
                           Gio.DBusCallFlags.NONE, 60000, None)
        except GLib.Error as e:
            answers.add("check:" + error_name(e))
    wait(loop)
    return {"answers": answers.counts}


def change_pin_burst(conn, path, count):
    """count ChangePin calls at once; their answers by error name."""
    loop = GLib.MainLoop()
    answers = Answers(loop, count)
    for _ in range(count):
        change_pin(conn, path, answers)
    wait(loop)
    return {"answers": answers.counts}


def checks(conn, path, count):
    """count Check() calls, one after the other."""
    answers = {}
    for _ in range(count):
        try:
            conn.call_sync(BUS_NAME, path, TOKEN_IFACE, "Check", None, None,
                           Gio.DBusCallFlags.NONE, 60000, None)
            name = "ok"
        except GLib.Error as e:
            name = error_name(e)
        answers[name] = answers.get(name, 0) + 1
    return {"answers": answers}


def flood(address, path, connections, per_connection):
    """connections × per_connection calls at once, of every kind a reader
    makes (and Check); their answers by error name, and how long the last
    one took."""
    loop = GLib.MainLoop()
    answers = Answers(loop, connections * per_connection)
    calls = [
        (path, "org.freedesktop.DBus.Properties", "GetAll", GLib.Variant("(s)", (TOKEN_IFACE,))),
        ("/org/safecad", "org.freedesktop.DBus.ObjectManager", "GetManagedObjects", None),
        (MANAGER_PATH, "org.freedesktop.DBus.Properties", "Get",
         GLib.Variant("(ss)", ("org.safecad.Manager1", "Tokens"))),
        (path, TOKEN_IFACE, "Check", None),
        (MANAGER_PATH, "org.safecad.Manager1", "GetHistory", None),
    ]
    conns = [connect(address) for _ in range(connections)]
    t0 = time.monotonic()
    for i in range(connections * per_connection):
        target, iface, method, args = calls[i % len(calls)]
        conns[i % connections].call_with_unix_fd_list(
            BUS_NAME, target, iface, method, args, None, Gio.DBusCallFlags.NONE, 120000,
            None, None, answers.done, None)
    wait(loop)
    return {"answers": answers.counts, "seconds": time.monotonic() - t0}


def tick_huge(conn, count):
    t0 = time.monotonic()
    try:
        conn.call_sync(BUS_NAME, MANAGER_PATH, "org.safecad.Manager1", "TickAgencies",
                       GLib.Variant("(sas)", ("", [""] * count)), None,
                       Gio.DBusCallFlags.NONE, 600000, None)
        name = "ok"
    except GLib.Error as e:
        name = error_name(e)
    return {"error": name, "seconds": time.monotonic() - t0}


def main():
    address, command, *args = sys.argv[1:]
    conn = connect(address)
    if command == "change-pin-then-check":
        out = change_pin_then_check(conn, args[0], int(args[1]))
    elif command == "change-pin-burst":
        out = change_pin_burst(conn, args[0], int(args[1]))
    elif command == "checks":
        out = checks(conn, args[0], int(args[1]))
    elif command == "flood":
        out = flood(address, args[0], int(args[1]), int(args[2]))
    elif command == "tick-huge":
        out = tick_huge(conn, int(args[0]))
    else:
        raise SystemExit(f"unknown command {command}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
