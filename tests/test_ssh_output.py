"""SSH output for people: target URLs as typed (paths not percent-encoded), paramiko's own INFO lines only
with -v, and the key-login hint with the URL's user and port."""
import logging

from harness.cli import QUIET_LIBRARIES, main
from harness.preflight import copy_id_command
from harness.targets.base import same_target
from harness.targets.ssh import SSHAddress


def test_a_target_url_keeps_its_paths_readable_and_parses_back():
    typed = "ssh://nvidia@tx2.local:2222?root=/data/ebt&python=/home/nvidia/venv/bin/python3"
    address = SSHAddress.parse(typed)
    assert str(address) == typed
    encoded = "ssh://nvidia@tx2.local:2222?root=%2Fdata%2Febt&python=%2Fhome%2Fnvidia%2Fvenv%2Fbin%2Fpython3"
    assert SSHAddress.parse(encoded) == address and str(SSHAddress.parse(encoded)) == typed
    assert same_target(encoded, typed)  # a run.json written with the old encoding still continues
    assert not same_target(typed, "ssh://nvidia@tx2.local:2222")


def test_the_key_login_hint_carries_user_and_port():
    assert copy_id_command(SSHAddress.parse("ssh://ebt@127.0.0.1:40022")) == "ssh-copy-id -p 40022 ebt@127.0.0.1"
    assert copy_id_command(SSHAddress.parse("ssh://tx2.local")) == "ssh-copy-id tx2.local"


def test_ssh_library_info_lines_only_with_verbose(tmp_path):
    status = ["status", "--results", str(tmp_path)]
    assert main(status) == 0
    assert all(logging.getLogger(n).getEffectiveLevel() == logging.WARNING for n in QUIET_LIBRARIES)
    assert main(["-v", *status]) == 0  # -v: they follow the root logger again (debug)
    assert all(logging.getLogger(n).level == logging.NOTSET for n in QUIET_LIBRARIES)
    assert main(status) == 0
    assert not logging.getLogger("paramiko.transport").isEnabledFor(logging.INFO)
