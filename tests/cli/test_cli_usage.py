"""Usage: every option documented, usage errors exit 2 before the network, global options anywhere,
bootstrap peers from the environment or a config file, and the light key code equal to core.keys."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from rlp2p import __version__
from rlp2p.cli import light
from rlp2p.cli.main import COMMANDS, build_parser
from rlp2p.core.keys import generate_log_key, load_key, log_name, save_key
from rlp2p.errors import DecodeError, KeyFileError

#: a well-formed address nobody listens on: a usage error must be found before any dial to it
NOBODY = "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWRLJqajeGZ7SYeTnoF3kFNZAKYhe27Wv3iGaXNT4vjGmG"


def test_every_option_of_every_command_has_help_text() -> None:
    _, parsers = build_parser()
    assert set(parsers) == set(COMMANDS)
    for name, parser in parsers.items():
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help and action.help != argparse.SUPPRESS, f"rlp2p {name} {action.option_strings or action.dest}: no help"


def test_publish_help_states_the_input_rules() -> None:
    _, parsers = build_parser()
    text = " ".join(parsers["publish"].format_help().split())
    for rule in ("one message per line", "trailing \\r", "blank line is an empty message", "1 MiB", "(default 3)", "empty stdin"):
        assert rule in text, rule


def test_light_keys_agree_with_core_keys(tmp_path: Path) -> None:
    name = light.new_key_file(tmp_path / "light.key")
    assert log_name(load_key(tmp_path / "light.key").public_key) == name
    assert (tmp_path / "light.key").stat().st_mode & 0o777 == 0o600
    with pytest.raises(KeyFileError):
        light.new_key_file(tmp_path / "light.key")
    key = generate_log_key()
    save_key(tmp_path / "core.key", key)
    assert light.key_file_name(tmp_path / "core.key") == log_name(key.public_key)
    assert light.check_name(log_name(key.public_key))
    (tmp_path / "junk.key").write_bytes(b"\x08\x01\x12\x05abc")
    with pytest.raises(KeyFileError):
        light.key_file_name(tmp_path / "junk.key")
    for bad in ("", "foo", "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N", "12D3KooW" + "1" * 300, log_name(key.public_key) + "1"):
        with pytest.raises(DecodeError):
            light.check_name(bad)


BAD_USAGE = [
    # (arguments, words the error line must hold)
    (["publish", "--key", "k", "--data", "d", "--bootstrap", NOBODY, "--timeout", "-5"], ["--timeout", "positive"]),
    (["publish", "--key", "k", "--data", "d", "--bootstrap", NOBODY, "--quorum", "3", "--replicas", "2"], ["--quorum 3", "--replicas 2"]),
    (["publish", "--key", "k", "--data", "d", "--bootstrap", NOBODY, "--validity", "7 days"], ["--validity", "30d"]),
    (["publish", "--key", "k", "--data", "d", "--bootstrap", NOBODY, "--ttl", "5x"], ["--ttl", "1d12h"]),
    (["publish", "--key", "k", "--data", "d", "--bootstrap", NOBODY, "--replicas", "0"], ["--replicas"]),
    (["publish", "--key", "k", "--data", "d", "--bootstrap", NOBODY, "--layout", "paged:x"], ["--layout"]),
    (["publish", "--key", "k", "--data", "d", "--bootstrap", NOBODY, "--embed", "some"], ["--embed"]),
    (["publish", "--key", "k", "--data", "d", "--bootstrap", "/ip4/127.0.0.1/tcp/9"], ["--bootstrap", "/p2p/"]),
    (["publish", "--key", "k", "--data", "d"], ["--bootstrap", "RLP2P_BOOTSTRAP"]),
    (["sync", "not-a-name", "--data", "d", "--bootstrap", NOBODY], ["NAME", "not a log name"]),
    (["sync", log_name(generate_log_key().public_key), "--data", "d", "--bootstrap", "not/a/multiaddr"], ["--bootstrap"]),
    (["serve", "--data", "d", "--listen", "/ip4/1.2.3"], ["--listen"]),
    (["demo", "--storage-peers", "1"], ["--storage-peers", "at least 3"]),
    (["demo", "--messages", "0"], ["--messages"]),
    (["inbox", "bad", "--data", "d"], ["NAME"]),
    (["inbox", log_name(generate_log_key().public_key), "--data", "d", "--after", "-1"], ["--after"]),
    (["nosuchcommand"], ["invalid choice"]),
]


def test_usage_errors_exit_2_with_one_line_before_the_network(cli) -> None:
    results = cli.run_many(*[(args, None) for args, _ in BAD_USAGE], timeout=30)
    for (_, words), result in zip(BAD_USAGE, results, strict=True):
        result.clean_failure(2, *words)
        assert result.stdout == "", result.describe()
        assert not (cli.cwd / "d").exists(), "a usage error created the data folder"
    # no network and no heavy import: well under the time of importing py-libp2p (measured in the
    # benchmark, not asserted here); what is asserted is that nothing was dialled or written


def test_version_and_global_options_before_or_after_the_command(cli) -> None:
    version, before, after = cli.run_many(
        (["--version"], None),
        (["--json", "keygen", "--out", "a.key"], None),
        (["keygen", "--out", "b.key", "--json", "-v"], None),
    )
    assert version.returncode == 0 and version.stdout.strip() == f"rlp2p {__version__}", version.describe()
    a, b = json.loads(before.stdout), json.loads(after.stdout)
    assert a["key_file"] == "a.key" and b["key_file"] == "b.key"
    named = cli.run("-v", "--json", "name", "--key", "a.key")
    assert json.loads(named.stdout) == {"name": a["name"]}, named.describe()


def test_bootstrap_precedence_flag_then_environment_then_config_file(cli) -> None:
    """Seen through which source a malformed address is blamed on (exit 2, no network)."""
    config = cli.cwd / "config.toml"
    config.write_text('bootstrap = ["/ip4/127.0.0.1/tcp/1/from-config"]\n')
    name = log_name(generate_log_key().public_key)
    sync = ["sync", name, "--data", "d"]
    env_only = cli.env(RLP2P_BOOTSTRAP="/ip4/127.0.0.1/tcp/1/from-env", RLP2P_CONFIG=str(config))
    config_only = cli.env(RLP2P_CONFIG=str(config))
    flag = cli.run(*sync, "--bootstrap", "/ip4/127.0.0.1/tcp/1/from-flag", env=env_only)
    env = cli.run(*sync, env=env_only)
    conf = cli.run(*sync, env=config_only)
    flag.clean_failure(2, "--bootstrap", "from-flag")
    env.clean_failure(2, "RLP2P_BOOTSTRAP", "from-env")
    conf.clean_failure(2, str(config), "from-config")
    config.write_text("bootstrap = [oops\n")
    broken = cli.run(*sync, env=config_only)
    broken.clean_failure(2, str(config))


def test_local_commands_on_a_missing_folder_or_key_fail_in_one_line(cli) -> None:
    name = log_name(generate_log_key().public_key)
    results = cli.run_many(
        (["status", "--data", "missing"], None),
        (["inbox", name, "--data", "missing"], None),
        (["ls", "--data", "missing"], None),
        (["name", "--key", "missing.key"], None),
    )
    for result in results:
        result.clean_failure(1, "missing")
    assert not (cli.cwd / "missing").exists()


def test_serve_flag_defaults_are_the_config_defaults() -> None:
    # the CLI keeps them as literals so that building the parser imports no py-libp2p
    from rlp2p.cli.main import SERVE_DEFAULTS
    from rlp2p.core.admission import AdmissionConfig
    from rlp2p.core.retention import RetentionConfig

    a, r = AdmissionConfig(), RetentionConfig()
    assert SERVE_DEFAULTS == {
        "quota_bytes_per_peer": a.quota_bytes_per_peer,
        "quota_names_per_peer": a.quota_names_per_peer,
        "quota_bytes_per_log": a.quota_bytes_per_log,
        "quota_bytes_all_peers": a.quota_bytes_all_peers,
        "quota_names_all_peers": a.quota_names_all_peers,
        "write_rate": a.write_rate,
        "write_burst": a.write_burst,
        "drop_after": r.drop_after,
        "gc_grace": r.grace,
        "retention_interval": r.interval,
    }
