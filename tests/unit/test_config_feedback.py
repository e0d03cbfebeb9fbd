"""`[feedback]`: off by default, the destinations it covers, and every bad value refused at start-up naming the file
and the key (exit 78), also through `syncd run`."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.commands.cli import main
from syncd.config import ConfigError, FeedbackSink, loads
from syncd.errors import ConfigError as Base

BASE = '[sell]\ntoken = "t0ken"\nbase_url = "http://127.0.0.1:1"\n'
SINKS = (
    "[sinks.salesmanago]\nbase_url='https://a.b'\nclient_id='c'\napi_secret='s'\nowner='o@example.com'\n"
    "[sinks.ontraport]\napp_id='a'\napi_key='k'\n"
)


def test_feedback_is_off_by_default() -> None:
    """Without a [feedback] table no destination feeds back."""
    assert loads(BASE + SINKS).feedback_destinations() == {}


def test_enabled_feedback_covers_every_enabled_destination_unless_its_table_opts_out() -> None:
    """On, every enabled destination feeds back with the default tags, unless its own table says enabled = false;
    a disabled destination never does."""
    config = loads(BASE + SINKS + '[feedback]\nenabled = true\n[feedback.ontraport]\nfield = "Ontraport status"\n')
    assert config.feedback_destinations() == {
        "salesmanago": FeedbackSink(),
        "ontraport": FeedbackSink(field="Ontraport status"),
    }
    off = loads(BASE + SINKS + "[feedback]\nenabled = true\n[feedback.salesmanago]\nenabled = false\n")
    assert list(off.feedback_destinations()) == ["ontraport"]
    only = loads(
        BASE
        + SINKS.replace("[sinks.ontraport]\n", "[sinks.ontraport]\nenabled = false\n")
        + "[feedback]\nenabled = true\n"
    )
    assert list(only.feedback_destinations()) == ["salesmanago"]


@pytest.mark.parametrize(
    ("table", "key", "message"),
    [
        ("[feedback]\nenabled = 1\n", "feedback.enabled", "Expected `bool`"),
        ("[feedback]\ncolour = 'red'\n", "feedback.colour", "unknown key"),
        ("[feedback]\nconcurrency = 0\n", "feedback.concurrency", "at least 1"),
        ("[feedback]\nmax_attempts = 0\n", "feedback.max_attempts", "at least 1"),
        ("[feedback]\nmax_backoff = '0s'\n", "feedback.max_backoff", "above zero"),
        ("[feedback]\nrate = 'fast'\n", "feedback.rate", "rate"),
        ("[feedback.ontraport]\ndead = ' rejected'\n", "feedback.ontraport.dead", "surrounding blanks"),
        ("[feedback.ontraport]\ndelivered = '" + "x" * 256 + "'\n", "feedback.ontraport.delivered", "at most 255"),
        ('[feedback.salesmanago]\nskipped = "a\\u0007b"\n', "feedback.salesmanago.skipped", "printable"),
        ("[feedback.salesmanago]\nfield = 'Status '\n", "feedback.salesmanago.field", "surrounding blanks"),
        ("[feedback.salesmanago]\ntags = ['x']\n", "feedback.salesmanago.tags", "unknown key"),
        ("[feedback.pipedrive]\ndelivered = 'x'\n", "feedback.pipedrive", "unknown key"),
    ],
)
def test_bad_feedback_settings_name_the_file_and_key(table: str, key: str, message: str) -> None:
    """Each mistake in [feedback] stops start-up with the file, the dotted key and what was expected."""
    with pytest.raises(ConfigError) as caught:
        loads(BASE + SINKS + table, source="/etc/syncd/syncd.toml", environ={})
    assert (caught.value.key, caught.value.path) == (key, "/etc/syncd/syncd.toml")
    assert message in str(caught.value)
    assert isinstance(caught.value, Base) and caught.value.exit_code == 78


def test_syncd_run_exits_78_naming_the_file_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`syncd run` with a bad feedback tag exits 78 and says where."""
    file = tmp_path / "syncd.toml"
    file.write_text(BASE + SINKS + "[feedback]\nenabled = true\n[feedback.ontraport]\ndead = ' x'\n")
    assert main(["run", "--config", str(file)]) == 78
    assert f"{file}: feedback.ontraport.dead: " in capsys.readouterr().err


def test_feedbacks_tags_are_never_copied_to_salesmanago() -> None:
    """With feedback on, every tag it may write on a Sell record is among SALESmanago's skipped Sell tags (beside
    the file's own); with it off, only the file's."""
    text = BASE + SINKS + "[sinks.salesmanago.tags]\nskip = ['internal']\n"
    on = loads(text + "[feedback]\nenabled = true\n[feedback.ontraport]\nskipped = 'not-in-ontraport'\n")
    assert on.sinks.salesmanago is not None
    assert on.sinks.salesmanago.tags.skip == [
        "internal", "synced-salesmanago", "rejected-salesmanago", "synced-ontraport", "not-in-ontraport",
        "rejected-ontraport",
    ]  # fmt: skip
    off = loads(text)
    assert off.sinks.salesmanago is not None and off.sinks.salesmanago.tags.skip == ["internal"]
