# SPDX-License-Identifier: LGPL-2.1-or-later
"""A private system-type bus, and Gio helpers to talk on it."""

import collections
import os
import queue
import signal
import subprocess
import threading
import time

from gi.repository import Gio, GLib

BUS_NAME = "org.safecad.Manager1"
MANAGER_PATH = "/org/safecad/Manager1"
MANAGER_IFACE = "org.safecad.Manager1"
TOKEN_IFACE = "org.safecad.Token1"

CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={path}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"""


class Bus:
    def __init__(self, directory):
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self.socket = os.path.join(directory, "bus")
        self.config = os.path.join(directory, "bus.conf")
        with open(self.config, "w") as f:
            f.write(CONFIG.format(path=self.socket))
        self.proc = subprocess.Popen(
            ["dbus-daemon", f"--config-file={self.config}", "--print-address", "--nofork"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,
        )
        line = self.proc.stdout.readline().decode().strip()
        if not line:
            raise RuntimeError(f"dbus-daemon failed: {self.proc.stderr.read().decode()}")
        self.address = line
        self._conn = None

    def connection(self):
        """A synchronous connection for the test's own calls."""
        if self._conn is None:
            self._conn = connect(self.address)
        return self._conn

    def stop(self):
        if self._conn is not None:
            try:
                self._conn.close_sync(None)
            except GLib.Error:
                pass
            self._conn = None
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def connect(address):
    return Gio.DBusConnection.new_for_address_sync(
        address,
        Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
        | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
        None, None,
    )


def call(conn, path, iface, method, args=None, reply_type=None, dest=BUS_NAME, timeout=30):
    return conn.call_sync(dest, path, iface, method, args, reply_type and GLib.VariantType(reply_type),
                          Gio.DBusCallFlags.NO_AUTO_START, int(timeout * 1000), None)


def get_property(conn, path, iface, name):
    return call(conn, path, "org.freedesktop.DBus.Properties", "Get",
                GLib.Variant("(ss)", (iface, name)), "(v)").unpack()[0]


def get_all(conn, path, iface):
    return call(conn, path, "org.freedesktop.DBus.Properties", "GetAll",
                GLib.Variant("(s)", (iface,)), "(a{sv})").unpack()[0]


def introspect(conn, path):
    return call(conn, path, "org.freedesktop.DBus.Introspectable", "Introspect",
                None, "(s)").unpack()[0]


def name_has_owner(conn, name=BUS_NAME):
    return conn.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus",
                          "org.freedesktop.DBus", "NameHasOwner", GLib.Variant("(s)", (name,)),
                          GLib.VariantType("(b)"), Gio.DBusCallFlags.NONE, 5000, None).unpack()[0]


def rescan(conn, timeout=30):
    call(conn, MANAGER_PATH, MANAGER_IFACE, "Rescan", None, "()", timeout=timeout)


Signal = collections.namedtuple("Signal", "member args time path interface")


class SignalListener:
    """Collects the signals on the bus in a thread with its own GLib main
    context. wait_for() and drain() look at one interface (by default
    org.safecad.Manager1's TokenAdded/TokenRemoved)."""

    def __init__(self, address):
        self.events = queue.Queue()
        self.seen = []
        self._ready = threading.Event()
        self._address = address
        self._error = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("signal listener did not start")
        if self._error:
            raise self._error

    def _run(self):
        ctx = GLib.MainContext()
        ctx.push_thread_default()
        try:
            self._conn = connect(self._address)
            self._conn.signal_subscribe(
                None, None, None, None, None, Gio.DBusSignalFlags.NONE, self._on_signal, None)
            # A round trip makes sure the match rule is installed before
            # the test goes on.
            self._conn.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus",
                                 "org.freedesktop.DBus", "GetId", None, None,
                                 Gio.DBusCallFlags.NONE, 5000, None)
            self._loop = GLib.MainLoop(ctx)
        except Exception as e:  # noqa: BLE001 - reported to the caller
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        self._loop.run()
        self._conn.close_sync(None)
        ctx.pop_thread_default()

    def _on_signal(self, conn, sender, path, iface, member, params, data):
        if iface == "org.freedesktop.DBus":
            return
        self.events.put(Signal(member, params.unpack(), time.monotonic(), path, iface))

    def _pull(self, timeout):
        try:
            self.seen.append(self.events.get(timeout=timeout))
            return True
        except queue.Empty:
            return False

    def wait_match(self, match, timeout=10, what="signal"):
        """The first not yet consumed signal for which match(signal) holds."""
        deadline = time.monotonic() + timeout
        checked = 0
        while True:
            for i in range(checked, len(self.seen)):
                if match(self.seen[i]):
                    return self.seen.pop(i)
            checked = len(self.seen)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {what} within {timeout}s; unconsumed: {self.seen}")
            self._pull(left)

    def wait_for(self, member, serial=None, timeout=10, interface=MANAGER_IFACE):
        def match(sig):
            return (sig.interface == interface and sig.member == member
                    and (serial is None or sig.args[1] == serial))
        return self.wait_match(match, timeout, f"{member}({serial})")

    def drain(self, wait=0.0, interface=MANAGER_IFACE):
        """The unconsumed signals of `interface` (None: all), after `wait` s."""
        time.sleep(wait)
        while self._pull(0):
            pass
        return [s for s in self.seen if interface is None or s.interface == interface]

    def stop(self):
        loop = getattr(self, "_loop", None)
        if loop is not None:
            loop.get_context().invoke_full(GLib.PRIORITY_DEFAULT, loop.quit)
            self._thread.join(5)
