# SPDX-License-Identifier: LGPL-2.1-or-later
"""A CAC card that only signs, in a vpcd reader.

libcacard emulates the card (tests/cards/cac-card.c puts it into vpcd's
reader); its keys and certificates sit in an NSS database whose password is
the card's PIN. OpenSC's module shows it as a PKCS#11 token that logs in and
signs, and refuses key generation and writes, as many real tokens do.

    card = CacCard(directory, pcscd.port, pki)   # one key and certificate
    card.insert()                                # the card is in the reader
    card.remove()                                # SIGTERM; it is out
"""

import os
import shutil
import signal
import subprocess
import time

from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

from .pcsc import card_present
from .pki import SUBJECT_AN_PHAT
from .safecad import BUILD_DIR, assert_sanitizer_clean, sanitizer_env

CAC_CARD = os.path.join(BUILD_DIR, "tests", "cards", "cac-card")
OPENSC_MODULE = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
DEFAULT_PIN = "123456"
MAX_CERTS = 3  # the CAC applets libcacard emulates


def available():
    """Why a CAC card cannot be made here, or None."""
    if not os.access(CAC_CARD, os.X_OK):
        return f"{CAC_CARD} is not built (libcacard-dev)"
    for tool in ("certutil", "pk12util"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (libnss3-tools)"
    if not os.path.exists(OPENSC_MODULE):
        return "OpenSC's PKCS#11 module is not installed (opensc-pkcs11)"
    return None


def subject_for(index):
    """The subject of the card's index-th default certificate: An Phát's,
    told apart by a title after the first."""
    if index == 0:
        return SUBJECT_AN_PHAT
    return SUBJECT_AN_PHAT + [("title", f"Chứng thư {index + 1}")]


class CacCard:
    """An NSS database with 1–3 keys and certificates from `pki` (or the
    `issued` ones given), and the program that makes it a card in the vpcd
    reader on `port`. The PIN is the database password."""

    def __init__(self, directory, port, pki, issued=None, count=1, pin=DEFAULT_PIN,
                 host="127.0.0.1"):
        if issued is None:
            issued = [pki.issue(days_left=200, subject=subject_for(i)) for i in range(count)]
        if not 1 <= len(issued) <= MAX_CERTS:
            raise ValueError(f"a CAC card holds 1 to {MAX_CERTS} certificates, not {len(issued)}")
        # NSS gives every certificate of one subject the same nickname, so
        # the card could not tell them apart.
        if len({item.cert.subject for item in issued}) != len(issued):
            raise ValueError("the certificates on one CAC card need distinct subjects")
        self.directory = directory
        self.port = port
        self.host = host
        self.pin = pin
        self.issued = list(issued)
        self.nicknames = [f"cac-cert-{i + 1}" for i in range(len(self.issued))]
        self.db = os.path.join(directory, "nssdb")
        self.log_path = os.path.join(directory, "cac-card.log")
        self.proc = None
        os.makedirs(self.db, exist_ok=True)
        self._make_db()

    # --- the NSS database -------------------------------------------------
    def _nss(self, *argv):
        r = subprocess.run(list(argv), capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {r.returncode}: {r.stdout}{r.stderr}")
        return r.stdout

    def _make_db(self):
        # The tools read passwords from files only; these are a test card's.
        pin_file = os.path.join(self.directory, "pin.txt")
        with open(pin_file, "w") as f:
            f.write(self.pin + "\n")
        transport = b"transport"
        transport_file = os.path.join(self.directory, "p12-password.txt")
        with open(transport_file, "w") as f:
            f.write(transport.decode() + "\n")
        self._nss("certutil", "-N", "-d", f"sql:{self.db}", "-f", pin_file)
        for nickname, item in zip(self.nicknames, self.issued):
            p12 = os.path.join(self.directory, f"{nickname}.p12")
            with open(p12, "wb") as f:
                f.write(pkcs12.serialize_key_and_certificates(
                    nickname.encode(), item.key, item.cert, None,
                    BestAvailableEncryption(transport)))
            self._nss("pk12util", "-i", p12, "-d", f"sql:{self.db}", "-k", pin_file,
                      "-w", transport_file)
            os.unlink(p12)
        os.unlink(transport_file)
        listed = self._nss("certutil", "-L", "-d", f"sql:{self.db}")
        for nickname in self.nicknames:
            if nickname not in listed:
                raise RuntimeError(f"{nickname} is missing from the NSS database: {listed}")
        os.unlink(pin_file)

    # --- in and out of the reader ----------------------------------------
    def insert(self, pcsc_socket=None, timeout=10):
        """Starts the card program and waits until it is connected to vpcd
        (and, given pcscd's socket, until pcscd sees the card)."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("the card is already in the reader")
        argv = [CAC_CARD, "--db", self.db, "--host", self.host, "--port", str(self.port)]
        for nickname in self.nicknames:
            argv += ["--cert", nickname]
        env = dict(os.environ)
        env.update(sanitizer_env())
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self._log,
                                     start_new_session=True)
        line = self.proc.stdout.readline().decode(errors="replace").strip()
        if line != "READY":
            self.proc.wait(timeout)
            self._log.close()
            raise RuntimeError(f"cac-card exited {self.proc.returncode}: {self.log()}")
        if pcsc_socket is not None:
            deadline = time.monotonic() + timeout
            while not card_present(pcsc_socket, timeout=0.5):
                if time.monotonic() > deadline:
                    raise RuntimeError("pcscd does not see the CAC card")
        return self

    def remove(self, timeout=10):
        """SIGTERM: the program closes its connection (the card leaves the
        reader) and must exit 0, sanitizer-clean."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        proc.stdout.close()
        self._log.close()
        log = self.log()
        assert proc.returncode == 0, f"cac-card exited {proc.returncode}:\n{log}"
        assert_sanitizer_clean(log, "cac-card")

    @property
    def inserted(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""
