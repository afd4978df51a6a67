"""Test venv recipes: what goes in, in which order."""

from __future__ import annotations

from pathlib import Path

import pytest

from fp4stack.core import installer
from fp4stack.core.errors import EnvError, UsageError
from fp4stack.core.pipconfig import PipSettings
from fp4stack.core.runner import Result
from fp4stack.stack.pins import load_project
from fp4stack.testing import envs

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """Record the commands an env build runs instead of running them (an existing venv)."""
    recorded: list[tuple[str, ...]] = []

    def record(argv, **_kwargs):
        recorded.append(tuple(str(arg) for arg in argv))
        return Result(recorded[-1], 0, "")

    monkeypatch.setattr(envs, "run", record)
    monkeypatch.setattr(installer, "run", record)
    monkeypatch.setattr(envs, "pip_settings", lambda _command: PipSettings())
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").touch()
    return recorded


def test_pins_declare_llmcompressor_without_its_dependencies():
    env = load_project(REPO).line("compressed-tensors@0.13.0").env
    assert env.requires_no_deps == ("llmcompressor==0.9.0.5",)
    assert not any(name.startswith("llmcompressor") for name in env.requires)


def test_no_deps_companions_go_in_after_pip_check(tmp_path, commands):
    """pip would refuse them at the check; installed before it, they would fail the env."""
    recipe = envs.EnvRecipe(
        torch="2.13.0",
        requires=("datasets==5.0.1",),
        requires_no_deps=("llmcompressor==0.9.0.5",),
        wheel="compressed_tensors-0.13.0-py3-none-any.whl",
    )
    envs._build(tmp_path, recipe)

    check = next(i for i, argv in enumerate(commands) if argv[-2:] == ("pip", "check"))
    installs = [
        i
        for i, argv in enumerate(commands)
        if "llmcompressor==0.9.0.5" in argv and "uninstall" not in argv
    ]
    assert len(installs) == 1 and installs[0] > check
    assert "--no-deps" in commands[installs[0]]


def test_no_deps_companions_are_out_during_pip_check_of_an_existing_venv(tmp_path, commands):
    """A rebuilt venv (a new wheel) still holds them from its last build: the check would fail."""
    recipe = envs.EnvRecipe(
        torch="2.13.0", requires_no_deps=("llmcompressor==0.9.0.5",), wheel="ct-0.13.0.whl"
    )
    envs._build(tmp_path, recipe)

    check = next(i for i, argv in enumerate(commands) if argv[-2:] == ("pip", "check"))
    uninstall = next(i for i, argv in enumerate(commands) if "uninstall" in argv)
    assert uninstall < check and "llmcompressor==0.9.0.5" in commands[uninstall]


def test_no_deps_companions_change_the_recipe_digest():
    plain = envs.EnvRecipe(torch="2.13.0")
    with_producer = envs.EnvRecipe(torch="2.13.0", requires_no_deps=("llmcompressor==0.9.0.5",))
    assert plain.digest() != with_producer.digest()


def test_wheels_from_other_upstreams_go_in_with_the_wheel_before_pip_check(tmp_path, commands):
    """A patched companion (our transformers beside our compressed-tensors) is installed in
    the same run as the env's own wheel, reinstalled with it, and checked."""
    own, other = (
        "compressed_tensors-0.13.0-py3-none-any.whl",
        "transformers-4.57.6-py3-none-any.whl",
    )
    recipe = envs.EnvRecipe(torch="2.13.0", wheel=own, extra_wheels=(other,))
    envs._build(tmp_path, recipe)

    check = next(i for i, argv in enumerate(commands) if argv[-2:] == ("pip", "check"))
    with_both = [i for i, argv in enumerate(commands) if own in argv and other in argv]
    assert len(with_both) == 2 and all(i < check for i in with_both)
    assert "--reinstall" in commands[with_both[1]]
    assert envs.EnvRecipe(torch="2.13.0", wheel=own).digest() != recipe.digest()


def test_pins_wheels_from_must_name_another_line(tmp_path):
    pins = (REPO / "upstream" / "pins.toml").read_text()
    (tmp_path / "upstream").mkdir()
    env = '[vllm.lines."0.28.0".env]\n'
    assert env in pins
    bad = pins.replace(env, env + 'wheels_from = ["vllm@0.28.0", "nope"]\n', 1)
    (tmp_path / "upstream" / "pins.toml").write_text(bad)
    with pytest.raises(UsageError, match=r"wheels_from names vllm@0\.28\.0, nope"):
        load_project(tmp_path)


def test_overrides_go_to_every_resolving_install_as_a_file(tmp_path, commands):
    """A pin the index cannot serve (vLLM 0.34.0's flashinfer-python==0.7.3) is replaced for
    the resolver; --no-deps installs resolve nothing and take no override."""
    recipe = envs.EnvRecipe(
        torch="2.14.0", overrides=("flashinfer-python==0.7.4",), wheel="vllm-0.34.0.whl"
    )
    envs._build(tmp_path, recipe)

    overrides = tmp_path / "fp4stack-overrides.txt"
    assert overrides.read_text() == "flashinfer-python==0.7.4\n"
    installs = [argv for argv in commands if "install" in argv and "uninstall" not in argv]
    for argv in installs:
        flagged = "--override" in argv and argv[argv.index("--override") + 1] == str(overrides)
        assert flagged != ("--no-deps" in argv), argv
    assert envs.EnvRecipe(torch="2.14.0", wheel="vllm-0.34.0.whl").digest() != recipe.digest()


PIP_CHECK = (
    "vllm 0.34.0+fp4stack.1a2b has requirement flashinfer-python==0.7.3, "
    "but you have flashinfer-python 0.7.4.\n"
    "vllm 0.34.0+fp4stack.1a2b has requirement cuda-python<13, but you have cuda-python 13.4.4.\n"
)


def test_pip_check_forgives_only_the_overridden_distribution():
    unmet = envs.unexpected_conflicts(PIP_CHECK, ("flashinfer_python==0.7.4",))
    assert unmet == [PIP_CHECK.splitlines()[1]]
    assert envs.unexpected_conflicts(PIP_CHECK, ()) == PIP_CHECK.splitlines()
    assert envs.unexpected_conflicts("No broken requirements found.\n", ()) == []


def test_an_env_whose_pip_check_fails_beyond_its_overrides_is_refused(
    tmp_path, commands, monkeypatch
):
    def check_fails(argv, **_kwargs):
        commands.append(tuple(str(a) for a in argv))
        failed = tuple(map(str, argv[-2:])) == ("pip", "check")
        return Result(commands[-1], 1 if failed else 0, PIP_CHECK if failed else "")

    monkeypatch.setattr(envs, "run", check_fails)
    recipe = envs.EnvRecipe(
        torch="2.14.0", overrides=("flashinfer-python==0.7.4",), wheel="vllm-0.34.0.whl"
    )
    with pytest.raises(EnvError, match="cuda-python<13") as raised:
        envs._build(tmp_path, recipe)
    assert "flashinfer" not in str(raised.value)

    only_overridden = PIP_CHECK.splitlines(keepends=True)[0]
    monkeypatch.setattr(envs, "run", lambda argv, **_kw: Result(tuple(argv), 1, only_overridden))
    envs._build(tmp_path, recipe)  # the one unmet pin is the overridden one: no error


def test_pins_refuse_an_override_that_is_not_a_requirement(tmp_path):
    pins = (REPO / "upstream" / "pins.toml").read_text()
    (tmp_path / "upstream").mkdir()
    env = '[vllm.lines."0.28.0".env]\n'
    bad = pins.replace(env, env + 'overrides = ["flashinfer python 0.7.4"]\n', 1)
    (tmp_path / "upstream" / "pins.toml").write_text(bad)
    with pytest.raises(UsageError, match=r"overrides.*flashinfer python 0\.7\.4"):
        load_project(tmp_path)
