# SPDX-License-Identifier: LGPL-2.1-or-later
"""Test harness for safecad's integration tests: a private bus, a test PKI,
SoftHSM tokens, a private pcscd with a vpcd card, the daemon and safectl."""
