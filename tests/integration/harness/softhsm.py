# SPDX-License-Identifier: LGPL-2.1-or-later
"""SoftHSM2 tokens in a private token folder (its own SOFTHSM2_CONF)."""

import os
import re
import shutil
import subprocess

from cryptography.hazmat.primitives import serialization

MODULE = "/usr/lib/softhsm/libsofthsm2.so"


class Token:
    def __init__(self, factory, label, pin, so_pin, serial):
        self.factory = factory
        self.label = label
        self.pin = pin
        self.so_pin = so_pin
        self.serial = serial

    def __repr__(self):
        return f"Token({self.label!r}, serial={self.serial!r})"

    def add_key(self, issued_or_key_pem, key_id, label="key"):
        """Imports a private key (PKCS#8) and its public key object. Takes an
        Issued, a cryptography private key or PKCS#8 PEM bytes."""
        pem = getattr(issued_or_key_pem, "key_pkcs8_pem", issued_or_key_pem)
        if hasattr(pem, "private_bytes"):
            pem = pem.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        path = self.factory._tmpfile(f"key-{key_id}.pem", pem)
        self.factory.run([
            "softhsm2-util", "--import", path, "--token", self.label, "--label", label,
            "--id", key_id, "--pin", self.pin,
        ])

    def add_cert(self, issued, key_id, label="cert"):
        path = self.factory._tmpfile(f"cert-{key_id}-{issued.serial}.der", issued.der)
        self.factory.run([
            "pkcs11-tool", "--module", MODULE, "--token-label", self.label, "--login",
            "--pin", self.pin, "--write-object", path, "--type", "cert", "--id", key_id,
            "--label", label,
        ])

    def add_pair(self, issued, key_id, label="An Phat"):
        self.add_key(issued, key_id, label)
        self.add_cert(issued, key_id, label)

    def list_objects(self):
        return self.factory.run([
            "pkcs11-tool", "--module", MODULE, "--token-label", self.label, "--login",
            "--pin", self.pin, "--list-objects",
        ]).stdout

    def delete(self):
        self.factory.delete_token(self.label)


class SoftHSM:
    """Token factory. `env` carries SOFTHSM2_CONF for every process."""

    def __init__(self, directory):
        self.directory = directory
        self.tokendir = os.path.join(directory, "tokens")
        os.makedirs(self.tokendir, exist_ok=True)
        self.conf = os.path.join(directory, "softhsm2.conf")
        with open(self.conf, "w") as f:
            f.write(
                f"directories.tokendir = {self.tokendir}\n"
                "objectstore.backend = file\n"
                "log.level = ERROR\n"
                "slots.removable = false\n"
            )
        self.env = dict(os.environ, SOFTHSM2_CONF=self.conf)
        self._n = 0
        self.tokens = {}

    def _tmpfile(self, name, data):
        self._n += 1
        path = os.path.join(self.directory, f"{self._n:03d}-{name}")
        with open(path, "wb") as f:
            f.write(data)
        return path

    def run(self, argv):
        r = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"{argv!r} failed ({r.returncode}): {r.stdout}{r.stderr}")
        return r

    def show_slots(self):
        """[(label, serial, initialized)] from softhsm2-util --show-slots."""
        out = self.run(["softhsm2-util", "--show-slots"]).stdout
        slots = []
        for block in re.split(r"\n(?=Slot \d+)", out):
            label = re.search(r"^\s*Label:[ \t]*(.*)$", block, re.M)
            serial = re.search(r"^\s*Serial number:[ \t]*(.*)$", block, re.M)
            init = re.search(r"^\s*Initialized:\s*(yes|no)", block, re.M)
            if serial:
                slots.append((label.group(1).rstrip() if label else "",
                              serial.group(1).strip(),
                              bool(init and init.group(1) == "yes")))
        return slots

    def create_token(self, label, pin="123456", so_pin="12345678"):
        self.run([
            "softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin,
            "--so-pin", so_pin,
        ])
        serials = [s for (l, s, init) in self.show_slots() if init and l == label]
        assert len(serials) == 1, f"token {label!r} not found once: {self.show_slots()}"
        token = Token(self, label, pin, so_pin, serials[0])
        self.tokens[label] = token
        return token

    def delete_token(self, label):
        self.run(["softhsm2-util", "--delete-token", "--token", label])
        self.tokens.pop(label, None)

    def cleanup(self):
        shutil.rmtree(self.directory, ignore_errors=True)
