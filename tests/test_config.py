import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner

from taiwa import config as config_mod
from taiwa.cli import cli
from taiwa.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "taiwa.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_sample_config_is_valid_and_complete(tmp_path):
    cfg = config_mod.sample_config(tmp_path)
    assert cfg.brands[0].name == "Kettlebird Coffee"
    assert [c.name for c in cfg.campaigns] == ["MyKettleMorning", "WinterCupDesign"]
    assert cfg.campaigns[1].start == dt.date(2026, 11, 15)
    assert cfg.resolve("taiwa:data/sample_posts.jsonl").exists()
    assert cfg.database == tmp_path / "taiwa.db"
    assert cfg.weights["sentiment"] == 0.35


def test_init_writes_a_commented_valid_example(tmp_path):
    target = tmp_path / "taiwa.toml"
    result = CliRunner().invoke(cli, ["init", str(target)])
    assert result.exit_code == 0, result.output
    text = target.read_text(encoding="utf-8")
    assert text.count("#") > 20  # commented
    config_mod.load(target)
    again = CliRunner().invoke(cli, ["init", str(target)])
    assert again.exit_code != 0 and "already exists" in str(again.exception)


def test_unknown_key_names_file_key_and_a_fix(tmp_path):
    p = write(tmp_path, '[model]\nbach_size = 8\n')
    with pytest.raises(ConfigError) as e:
        config_mod.load(p)
    assert e.value.file == str(p) and e.value.key == "model.bach_size"
    assert "did you mean 'batch_size'" in e.value.fix


def test_wrong_type_names_the_expected_type(tmp_path):
    p = write(tmp_path, '[priority.weights]\nsentiment = "high"\n')
    with pytest.raises(ConfigError) as e:
        config_mod.load(p)
    assert e.value.key == "priority.weights.sentiment"
    assert "expected float" in e.value.problem and "sentiment = 0.5" in e.value.fix


def test_a_secret_in_the_file_is_refused_with_the_env_var_way(tmp_path):
    p = write(tmp_path, '[platforms.x]\nbearer_token = "AAAA-secret"\n')
    with pytest.raises(ConfigError) as e:
        config_mod.load(p)
    assert "bearer_token_env" in e.value.fix and "environment" in e.value.fix
    assert "AAAA-secret" not in str(e.value)


def test_env_var_fields_must_be_names_not_values(tmp_path):
    p = write(tmp_path, '[platforms.x]\nbearer_token_env = "AAAA%2Fsecret"\n')
    with pytest.raises(ConfigError) as e:
        config_mod.load(p)
    assert e.value.key == "platforms.x.bearer_token_env"


@pytest.mark.parametrize("text, key, words", [
    ("[platforms.myspace]\nenabled = true\n", "platforms.myspace", "unknown platform"),
    ("[[campaigns]]\nname = \"a\"\nhashtags = [\"a\"]\nstart = 2026-11-10\nend = 2026-11-01\n", "campaigns[0].end",
     "before it starts"),
    ("[[campaigns]]\nname = \"a\"\nhashtags = [\"a\"]\nstart = 2026-11-10\n", "campaigns[0].end", "missing"),
    ("[templates.complaint]\nen = \"Hi {nmae}\"\n", "templates.complaint.en", "unknown template field"),
    ("[templates.gossip]\nen = \"hi\"\n", "templates.gossip", "unknown intent"),
    ("[model]\ndevice = \"tpu\"\n", "model.device", "unknown device"),
    ("[[brands]]\nhandles = [\"x\"]\n", "brands[0].name", "missing required key"),
    ("[surprise]\na = 1\n", "surprise", "unknown section"),
])
def test_each_mistake_names_its_key(tmp_path, text, key, words):
    with pytest.raises(ConfigError) as e:
        config_mod.load(write(tmp_path, text))
    assert e.value.key == key and words in e.value.problem


def test_toml_syntax_error_and_missing_file(tmp_path):
    with pytest.raises(ConfigError) as e:
        config_mod.load(write(tmp_path, "[model\nname = 1"))
    assert "not valid TOML" in e.value.problem
    with pytest.raises(ConfigError) as e:
        config_mod.load(tmp_path / "nope.toml")
    assert "taiwa init" in e.value.fix


def test_cli_reports_config_error_with_exit_code(tmp_path):
    import subprocess
    import sys

    p = write(tmp_path, '[model]\nbatch_size = "big"\n')
    r = subprocess.run([sys.executable, "-m", "taiwa", "-c", str(p), "status"], capture_output=True, text=True)
    assert r.returncode == 2
    assert "model.batch_size" in r.stderr and "expected int" in r.stderr


def test_every_setting_is_documented_in_the_readme():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    missing = [key for key, *_ in config_mod.settings_reference() if f"`{key}`" not in readme]
    assert not missing, f"README lacks settings: {missing}"


BRAND = '[[brands]]\nname = "Lumen Tea"\n'


@pytest.mark.parametrize("text, key, words", [
    ("[platforms.replay]\ninterval_minutes = -1\n", "platforms.replay.interval_minutes", "out of range"),
    ("[platforms.x]\ninterval_minutes = 0\n", "platforms.x.interval_minutes", "at least 0.001"),
    ("[priority]\nreach_full_at_followers = 0\n", "priority.reach_full_at_followers", "at least 2"),
    ("[priority]\nreach_full_at_followers = -5\n", "priority.reach_full_at_followers", "out of range"),
    ("[priority.weights]\nsentiment = nan\n", "priority.weights.sentiment", "not a finite number"),
    ("[priority.weights]\nreach = inf\n", "priority.weights.reach", "not a finite number"),
    ("[templates.complaint]\nen = \"Hi {name:d}\"\n", "templates.complaint.en", "format or a conversion"),
    ("[templates.complaint]\nen = \"Hi {name!z}\"\n", "templates.complaint.en", "format or a conversion"),
    ("[responder]\nmemory_days = -3\n", "responder.memory_days", "at least 0"),
    ("[platforms.x]\nmonthly_read_budget = -1\n", "platforms.x.monthly_read_budget", "at least 0"),
    ("[daemon]\nprocess_seconds = -0.5\n", "daemon.process_seconds", "more than 0"),
    ("[[campaigns]]\nname = \"a\"\nhashtags = [\"a\"]\nstart = 2026-11-01\nend = 2026-11-02\ngoals = { entires = 5 }\n",
     "campaigns[0].goals.entires", "unknown goal"),
    ("[[campaigns]]\nname = \"../../x\"\nhashtags = [\"a\"]\nstart = 2026-11-01\nend = 2026-11-02\n",
     "campaigns[0].name", "cannot name a report folder"),
])
def test_values_are_checked_at_load(tmp_path, text, key, words):
    with pytest.raises(ConfigError) as e:
        config_mod.load(write(tmp_path, BRAND + text))
    assert e.value.key == key and words in e.value.problem, (e.value.key, e.value.problem)


def test_a_config_without_brands_is_refused(tmp_path):
    with pytest.raises(ConfigError) as e:
        config_mod.load(write(tmp_path, "[model]\nbatch_size = 8\n"))
    assert e.value.key == "brands" and "[[brands]]" in e.value.fix


@pytest.mark.parametrize("text, key, words", [
    ("[platforms.replay]\ninterval_minutes = 1e-9\n", "platforms.replay.interval_minutes", "out of range"),
    ("[platforms.x]\nmonthly_read_budget = 1180591620717411303424\n", "platforms.x.monthly_read_budget",
     "out of range"),
    ('[templates.praise]\nen = "Thanks {name!r}!"\n', "templates.praise.en", "conversion"),
    ('[templates.praise]\nen = "Thanks\\u0000 {name}!"\n', "templates.praise.en", "control character"),
])
def test_implausible_values_are_refused_at_load(tmp_path, text, key, words):
    path = tmp_path / "taiwa.toml"
    path.write_text(BRAND + text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        config_mod.load(path)
    assert e.value.key == key and words in e.value.problem
