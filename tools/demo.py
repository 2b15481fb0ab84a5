#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The safecad demo: a whole TH1 renewal on real parts, in a private world.

A private system bus, a private pcscd with the vpcd virtual reader, a
SoftHSM token holding a certificate that expires in 12 days, the reference
CA with a renewal waiting, and the daemon. The token is plugged in (a card
enters the reader), safectl shows it, walks through the renewal, and
pkcs11-tool and openssl read the result back from the token.

    tools/demo.py [--build-dir DIR]   (tools/demo.sh builds and runs it)
"""

import argparse
import datetime
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
sys.path.insert(0, os.path.join(TOP, "tools", "reference-ca"))

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from harness.bus import Bus  # noqa: E402
from harness.pcsc import Pcscd, VpcdCard  # noqa: E402
from harness.softhsm import SoftHSM  # noqa: E402
from harness.refca import RefCA  # noqa: E402

SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "246810"
SUBJECT = [["C", "VN"], ["ST", "Hà Nội"], ["L", "Cầu Giấy"],
           ["O", "CÔNG TY TNHH THƯƠNG MẠI VÀ DỊCH VỤ AN PHÁT"],
           ["CN", "CÔNG TY TNHH THƯƠNG MẠI VÀ DỊCH VỤ AN PHÁT"],
           ["UID", "MST:0101234567"]]


def say(text):
    print(f"\n\033[1m== {text}\033[0m" if sys.stdout.isatty() else f"\n== {text}", flush=True)


def show(argv, env, stdin=None, pass_fds=(), check=True):
    print("$ " + " ".join(a if " " not in a else repr(a) for a in argv), flush=True)
    r = subprocess.run(argv, env=env, input=stdin, pass_fds=pass_fds, text=True)
    if check and r.returncode != 0:
        raise SystemExit(f"demo: {argv[0]} exited {r.returncode}")
    return r.returncode


def rfc3339(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default=os.path.join(TOP, "build-demo"))
    args = parser.parse_args()
    safecad = os.path.join(args.build_dir, "daemon", "safecad")
    safectl = os.path.join(args.build_dir, "client", "safectl")

    world = tempfile.mkdtemp(prefix="safecad-demo-")
    stack = []
    try:
        say("A private system bus, pcscd with a virtual reader, SoftHSM, the reference CA")
        bus = Bus(os.path.join(world, "bus"))
        stack.append(bus.stop)
        pcscd = Pcscd(os.path.join(world, "pcscd")).start()
        stack.append(pcscd.stop)
        hsm = SoftHSM(os.path.join(world, "softhsm"))
        ca = RefCA(os.path.join(world, "ca")).start()
        stack.append(ca.stop)
        print(f"bus {bus.address}\npcscd {pcscd.socket_path} (vpcd port {pcscd.port})\n"
              f"CA {ca.url}")

        config = os.path.join(world, "etc")
        os.makedirs(os.path.join(config, "ca.d"))
        with open(os.path.join(config, "safecad.conf"), "w") as f:
            f.write(f"[pkcs11]\nmodules = {SOFTHSM}\n[network]\nconnect_timeout = 5\n"
                    "timeout = 30\n")
        # The demo CA stands in for SAFE-CA: same profile name, its own
        # issuers and URL, overriding the shipped profile by file name.
        with open(os.path.join(config, "ca.d", "safe-ca.conf"), "w") as f:
            f.write("[ca]\nname = SAFE-CA\nprotocol = v1\n"
                    f"url = {ca.url}\nissuers = {ca.issuers_pem}\n"
                    "support = 1900 6154 (T2–T6 8:00–17:00, T7 8:00–12:00)\n")
            with open(os.path.join(TOP, "data", "ca.d", "safe-ca.conf")) as shipped:
                text = shipped.read()
            f.write("\n" + text[text.index("[agency."):])

        env = dict(hsm.env, DBUS_SYSTEM_BUS_ADDRESS=bus.address,
                   PCSCLITE_CSOCK_NAME=pcscd.socket_path,
                   CONFIGURATION_DIRECTORY=config,
                   STATE_DIRECTORY=os.path.join(world, "state"),
                   SAFECAD_DATADIR=os.path.join(TOP, "data"))

        say("safecad starts (no token yet)")
        log = open(os.path.join(world, "safecad.log"), "w")
        daemon = subprocess.Popen([safecad], env=env, stdout=log, stderr=log,
                                  start_new_session=True)
        stack.append(lambda: (daemon.send_signal(signal.SIGTERM), daemon.wait(10)))
        for _ in range(200):
            if subprocess.run([safectl, "status"], env=env, capture_output=True).returncode == 0:
                break
            time.sleep(0.05)
        show([safectl, "status"], env)

        say("The CA issued the token's certificate a year ago; it expires in 12 days")
        token = hsm.create_token("AN PHAT", pin=PIN)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        _, issued = ca.admin.enroll(
            key.public_key().public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo),
            subject=SUBJECT, not_before=rfc3339(now - datetime.timedelta(days=353)),
            not_after=rfc3339(now + datetime.timedelta(days=12)))
        token.add_key(key, "01", label="An Phat 2025")
        cert_path = os.path.join(world, "old.pem")
        with open(cert_path, "w") as f:
            f.write(issued["certificate"])
        subprocess.run(["openssl", "x509", "-in", cert_path, "-outform", "der", "-out",
                        cert_path + ".der"], check=True)
        hsm.run(["pkcs11-tool", "--module", SOFTHSM, "--token-label", "AN PHAT", "--login",
                 "--pin", PIN, "--write-object", cert_path + ".der", "--type", "cert",
                 "--id", "01", "--label", "An Phat 2025"])
        action = ca.admin.add_action(
            certificate=issued["certificate"], type="renew",
            not_before=rfc3339(now), not_after=rfc3339(now + datetime.timedelta(days=730)),
            message="SAFE-CA: gia hạn chứng thư số 2 năm. Cảm ơn Quý khách.")
        print(f"token {token.serial}, certificate {issued['serial']}; "
              f"the CA queued renewal {action['id']}")

        say("Step 1: plug the token in (a card enters the reader)")
        watch = subprocess.Popen([safectl, "watch"], env=env, stdout=sys.stdout,
                                 start_new_session=True)
        stack.append(lambda: (watch.send_signal(signal.SIGTERM), watch.wait(5)))
        time.sleep(0.3)
        card = VpcdCard(pcscd.port).insert()
        stack.append(card.remove)
        for _ in range(200):
            out = subprocess.run([safectl, "--json", "status"], env=env, capture_output=True,
                                 text=True).stdout
            if token.serial in out and action["id"] in out:
                break
            time.sleep(0.05)
        watch.send_signal(signal.SIGTERM)
        watch.wait(5)
        show([safectl, "status"], env)

        say("Step 2: the renewal, as the CA's guide walks it (answers: accept y, keep the "
            "previous registration y, PIN by fd, then write the issued certificate y)")
        read_fd, write_fd = os.pipe()
        os.write(write_fd, (PIN + "\n").encode())
        os.close(write_fd)
        show([safectl, "renew", "--pin-fd", str(read_fd)], env, stdin="y\ny\ny\n",
             pass_fds=(read_fd,))
        os.close(read_fd)

        say("The token now, read by pkcs11-tool (the previous pair is kept)")
        show(["pkcs11-tool", "--module", SOFTHSM, "--token-label", "AN PHAT", "--login",
              "--pin", PIN, "--list-objects"], env)

        say("The new certificate chains to the CA")
        new_pem = os.path.join(world, "new.pem")
        show([safectl, "export", "-o", new_pem], env)
        root = os.path.join(ca.state, "root.pem")
        issuing = os.path.join(ca.state, "issuing.pem")
        show(["openssl", "verify", "-CAfile", root, "-untrusted", issuing, new_pem], env)
        show([safectl, "status"], env)
        show([safectl, "history"], env)
        say("Done. safecad's log:")
        log.flush()
        with open(os.path.join(world, "safecad.log")) as f:
            print(f.read())
    except BaseException:
        log_path = os.path.join(world, "safecad.log")
        if os.path.exists(log_path):
            with open(log_path) as f:
                print("safecad's log:\n" + f.read(), file=sys.stderr)
        raise
    finally:
        for undo in reversed(stack):
            try:
                undo()
            except Exception as e:  # keep tearing down
                print(f"demo: cleanup: {e}", file=sys.stderr)
        shutil.rmtree(world, ignore_errors=True)


if __name__ == "__main__":
    main()
