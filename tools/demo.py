#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The safecad demo: a whole TH1 renewal on real parts, in a private world.

A private system bus, a private pcscd with the vpcd virtual reader, a
SoftHSM token holding a certificate that expires in 12 days, the reference
CA with a renewal waiting, and the daemon. The token is plugged in (a card
enters the reader), safectl shows it, walks through the renewal, and
pkcs11-tool and openssl read the result back from the token.

With --card the token is a smart card instead: an IsoApplet card (the
emulator of tests/integration/harness/isoapplet.py) in vpcd's reader,
personalised with OpenSC's pkcs15-init, holding a key made on the card and
its certificate; safecad reaches it through OpenSC's opensc-pkcs11.so, the
renewal makes the new RSA-2048 key on the card, and OpenSC's own tools
read the result back.

    tools/demo.py [--build-dir DIR] [--card]   (tools/demo.sh builds and runs it)
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
from harness.isoapplet import OPENSC_MODULE, IsoAppletCard  # noqa: E402
from harness.pcsc import VPCD_DRIVER, Pcscd, VpcdCard, card_present  # noqa: E402
from harness.softhsm import SoftHSM  # noqa: E402
from harness.refca import RefCA  # noqa: E402

SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "246810"
SUBJECT = [["C", "VN"], ["ST", "Hà Nội"], ["L", "Cầu Giấy"],
           ["O", "CÔNG TY TNHH THƯƠNG MẠI VÀ DỊCH VỤ AN PHÁT"],
           ["CN", "CÔNG TY TNHH THƯƠNG MẠI VÀ DỊCH VỤ AN PHÁT"],
           ["UID", "MST:0101234567"]]
# The card's holder has a shorter name. OpenSC's isoApplet profile gives the
# card's certificate directory (PKCS15-CDF) 512 bytes, and each entry there
# carries the certificate's subject: with the name above a second
# certificate does not fit (pkcs15-init: "File too small", CKR_GENERAL_ERROR
# to safecad), and a TH1 renewal keeps the previous certificate beside the
# new one. With this name both fit (487 bytes).
CARD_SUBJECT = [["C", "VN"], ["ST", "Hà Nội"], ["L", "Cầu Giấy"],
                ["O", "CÔNG TY TNHH AN PHÁT"], ["CN", "CÔNG TY TNHH AN PHÁT"],
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


def wait_for(ready, seconds, what):
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline:
            raise SystemExit(f"demo: no {what} after {seconds} s")
        time.sleep(0.05)


def card_tools_missing():
    """What --card needs that is not installed (tools/install-deps.sh
    installs it all), or None."""
    for tool in ("pkcs15-init", "pkcs15-tool", "pkcs11-tool", "pcscd"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            return tool
    for path in (OPENSC_MODULE, VPCD_DRIVER):
        if not os.path.exists(path):
            return path
    return None


def card_certificate_ids(env):
    """The IDs of the certificates on the card, as pkcs15-tool lists them."""
    r = subprocess.run(["pkcs15-tool", "--list-certificates"], env=env, text=True,
                       capture_output=True, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise SystemExit(f"demo: pkcs15-tool --list-certificates exited {r.returncode}: "
                         f"{r.stderr}")
    return [line.split(":", 1)[1].strip() for line in r.stdout.splitlines()
            if line.strip().startswith("ID") and ":" in line]


def enroll_old(ca, public_key, now, subject=SUBJECT):
    """The token's certificate as the CA issued it a year ago, expiring in
    12 days, and the renewal the CA queued for it (same subject)."""
    _, issued = ca.admin.enroll(
        public_key.public_bytes(serialization.Encoding.PEM,
                                serialization.PublicFormat.SubjectPublicKeyInfo),
        subject=subject, not_before=rfc3339(now - datetime.timedelta(days=353)),
        not_after=rfc3339(now + datetime.timedelta(days=12)))
    action = ca.admin.add_action(
        certificate=issued["certificate"], type="renew",
        not_before=rfc3339(now), not_after=rfc3339(now + datetime.timedelta(days=730)),
        message="SAFE-CA: gia hạn chứng thư số 2 năm. Cảm ơn Quý khách.")
    return issued, action


def der_file(world, name, pem):
    path = os.path.join(world, name + ".pem")
    with open(path, "w") as f:
        f.write(pem)
    subprocess.run(["openssl", "x509", "-in", path, "-outform", "der", "-out", path + ".der"],
                   check=True)
    return path + ".der"


def prepare_card(card, pcscd, ca, world, now):
    """The card as the CA handed it out a year ago: personalised, a key
    made on it, its certificate beside it. Done before safecad starts, then
    the card is taken out of the reader. Returns (serial, action)."""
    card.insert()
    wait_for(lambda: card_present(pcscd.socket_path, timeout=1), 10,
             "card in the reader (pcscd did not see it)")
    serial = card.personalise(pcscd, pin=PIN, label="AN PHAT")
    public = card.generate_key(pcscd, "01", label="An Phat 2025")
    issued, action = enroll_old(ca, public, now, CARD_SUBJECT)
    with open(der_file(world, "old", issued["certificate"]), "rb") as f:
        card.write_cert(pcscd, f.read(), "01", label="An Phat 2025")
    card.remove()
    wait_for(lambda: not card_present(pcscd.socket_path), 10,
             "card out of the reader (pcscd still sees it)")
    print(f"card {serial}: PIN {PIN}, an RSA-2048 key made on the card (ID 01), "
          f"certificate {issued['serial']}; the CA queued renewal {action['id']}")
    return serial, action


def prepare_softhsm(hsm, ca, world, now):
    """A SoftHSM token holding the key and the certificate. Returns
    (serial, action)."""
    token = hsm.create_token("AN PHAT", pin=PIN)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    issued, action = enroll_old(ca, key.public_key(), now)
    token.add_key(key, "01", label="An Phat 2025")
    hsm.run(["pkcs11-tool", "--module", SOFTHSM, "--token-label", "AN PHAT", "--login",
             "--pin", PIN, "--write-object", der_file(world, "old", issued["certificate"]),
             "--type", "cert", "--id", "01", "--label", "An Phat 2025"])
    print(f"token {token.serial}, certificate {issued['serial']}; "
          f"the CA queued renewal {action['id']}")
    return token.serial, action


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default=os.path.join(TOP, "build-demo"))
    parser.add_argument("--card", action="store_true",
                        help="renew on an IsoApplet smart card through OpenSC "
                        "instead of SoftHSM")
    args = parser.parse_args()
    safecad = os.path.join(args.build_dir, "daemon", "safecad")
    safectl = os.path.join(args.build_dir, "client", "safectl")
    if args.card:
        missing = card_tools_missing()
        if missing:
            raise SystemExit(f"demo: --card needs {missing} (tools/install-deps.sh "
                             "installs it)")
    # A SIGTERM or SIGHUP stops the demo as Ctrl+C does: everything it
    # started is stopped below.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _: sys.exit(128 + signum))

    world = tempfile.mkdtemp(prefix="safecad-demo-")
    stack = []
    log = None
    try:
        token_name = "an IsoApplet card" if args.card else "SoftHSM"
        say(f"A private system bus, pcscd with a virtual reader, {token_name}, "
            "the reference CA")
        bus = Bus(os.path.join(world, "bus"))
        stack.append(bus.stop)
        pcscd = Pcscd(os.path.join(world, "pcscd")).start()
        stack.append(pcscd.stop)
        ca = RefCA(os.path.join(world, "ca")).start()
        stack.append(ca.stop)
        print(f"bus {bus.address}\npcscd {pcscd.socket_path} (vpcd port {pcscd.port})\n"
              f"CA {ca.url}")
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)

        config = os.path.join(world, "etc")
        os.makedirs(os.path.join(config, "ca.d"))
        with open(os.path.join(config, "safecad.conf"), "w") as f:
            f.write(f"[pkcs11]\nmodules = {OPENSC_MODULE if args.card else SOFTHSM}\n"
                    "[network]\nconnect_timeout = 5\ntimeout = 30\n")
        # The demo CA stands in for SAFE-CA: same profile name, its own
        # issuers and URL, overriding the shipped profile by file name.
        with open(os.path.join(config, "ca.d", "safe-ca.conf"), "w") as f:
            f.write("[ca]\nname = SAFE-CA\nprotocol = v1\n"
                    f"url = {ca.url}\nissuers = {ca.issuers_pem}\n"
                    "support = 1900 6154 (T2–T6 8:00–17:00, T7 8:00–12:00)\n")
            with open(os.path.join(TOP, "data", "ca.d", "safe-ca.conf")) as shipped:
                text = shipped.read()
            f.write("\n" + text[text.index("[agency."):])

        if args.card:
            # The card's state, and the OpenSC configuration that every
            # OpenSC user here reads (safecad's workers too): IsoApplet's
            # driver only, no file cache.
            os.makedirs(os.path.join(world, "card"))
            card = IsoAppletCard(os.path.join(world, "card", "isoapplet.json"), pcscd.port)
            stack.append(card.remove)
            base = dict(os.environ, OPENSC_CONF=card.conf_path)
        else:
            hsm = SoftHSM(os.path.join(world, "softhsm"))
            base = hsm.env
        env = dict(base, DBUS_SYSTEM_BUS_ADDRESS=bus.address,
                   PCSCLITE_CSOCK_NAME=pcscd.socket_path,
                   CONFIGURATION_DIRECTORY=config,
                   STATE_DIRECTORY=os.path.join(world, "state"),
                   SAFECAD_DATADIR=os.path.join(TOP, "data"))

        if args.card:
            say("The CA issued the card's certificate a year ago, for a key made on the "
                "card; it expires in 12 days")
            serial, action = prepare_card(card, pcscd, ca, world, now)

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

        if not args.card:
            say("The CA issued the token's certificate a year ago; it expires in 12 days")
            serial, action = prepare_softhsm(hsm, ca, world, now)

        say("Step 1: plug the token in (a card enters the reader)")
        watch = subprocess.Popen([safectl, "watch"], env=env, stdout=sys.stdout,
                                 start_new_session=True)
        stack.append(lambda: (watch.send_signal(signal.SIGTERM), watch.wait(5)))
        time.sleep(0.3)
        if args.card:
            card.insert()
        else:
            stack.append(VpcdCard(pcscd.port).insert().remove)

        def listed():
            out = subprocess.run([safectl, "--json", "status"], env=env, capture_output=True,
                                 text=True).stdout
            return serial in out and action["id"] in out
        wait_for(listed, 60, f"token {serial} with renewal {action['id']} in safectl status")
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

        root = os.path.join(ca.state, "root.pem")
        issuing = os.path.join(ca.state, "issuing.pem")
        new_pem = os.path.join(world, "new.pem")
        if args.card:
            say("The card now, read by OpenSC's pkcs11-tool (the previous pair is kept)")
            print(f"(OPENSC_CONF={card.conf_path} PCSCLITE_CSOCK_NAME={pcscd.socket_path})")
            show(["pkcs11-tool", "--module", OPENSC_MODULE, "--login", "--pin", PIN,
                  "--list-objects"], env)

            say("The new certificate, read from the card by pkcs15-tool, chains to the CA")
            ids = card_certificate_ids(env)
            new_ids = [i for i in ids if i != "01"]
            if len(new_ids) != 1 or "01" not in ids:
                raise SystemExit(f"demo: the card holds certificates {ids}, not the "
                                 "previous one (01) and one new one")
            show(["pkcs15-tool", "--read-certificate", new_ids[0], "--output", new_pem], env)
            exported = os.path.join(world, "exported.pem")
            subprocess.run([safectl, "export", "-o", exported], env=env, check=True)
            with open(new_pem) as a, open(exported) as b:
                if a.read().strip() != b.read().strip():
                    raise SystemExit("demo: the card's new certificate is not the one "
                                     "safectl export shows")
            print(f"(the same certificate as safectl export shows, ID {new_ids[0]})")
        else:
            say("The token now, read by pkcs11-tool (the previous pair is kept)")
            show(["pkcs11-tool", "--module", SOFTHSM, "--token-label", "AN PHAT", "--login",
                  "--pin", PIN, "--list-objects"], env)

            say("The new certificate chains to the CA")
            show([safectl, "export", "-o", new_pem], env)
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
        if log is not None:
            log.close()
        shutil.rmtree(world, ignore_errors=True)


if __name__ == "__main__":
    main()
