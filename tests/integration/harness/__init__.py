"""Test harness for safecad's integration tests: a private bus, a test PKI,
SoftHSM tokens, a private pcscd with a vpcd card, the daemon and safectl."""
