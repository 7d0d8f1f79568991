"""Which target a run uses, from --target, --stack/--stack-outputs, --redis-url and REDIS_URL
(a pure decision, made in this one place for the plugin, berthcache-ops and the scripts)."""

from __future__ import annotations

import re

import pytest

from berthcache.testing._target import TARGET_NAMES, UsageError
from berthcache.testing._targets import (
    TARGET_BUILDERS,
    TargetChoice,
    choose_target,
    choose_target_from_args,
    docker_server_command,
)

URL = "rediss://app:s3cret@cache.example.com:6379/0"
ENV_URL = "redis://:envpass@10.0.0.5:6379/0"


@pytest.mark.parametrize(
    ("option_target", "option_url", "env", "expected"),
    [
        pytest.param(None, None, {}, ("local", None, "default"), id="nothing-means-local"),
        pytest.param("local", None, {}, ("local", None, "--target"), id="explicit-local"),
        pytest.param(" Docker ", None, {}, ("docker", None, "--target"), id="case-and-space"),
        pytest.param("stack", None, {}, ("stack", None, "--target"), id="explicit-stack"),
        pytest.param(None, URL, {}, ("url", URL, "--redis-url"), id="redis-url-means-url"),
        pytest.param(
            None, None, {"REDIS_URL": ENV_URL}, ("url", ENV_URL, "REDIS_URL"), id="env-means-url"
        ),
        pytest.param(
            None, URL, {"REDIS_URL": ENV_URL}, ("url", URL, "--redis-url"), id="flag-beats-env"
        ),
        pytest.param("url", URL, {}, ("url", URL, "--target"), id="target-url-with-flag"),
        pytest.param(
            "url", None, {"REDIS_URL": ENV_URL}, ("url", ENV_URL, "--target"), id="target-url-env"
        ),
        pytest.param(
            "local",
            None,
            {"REDIS_URL": ENV_URL},
            ("local", None, "--target"),
            id="target-beats-env",
        ),
        pytest.param(
            "docker", None, {"REDIS_URL": ENV_URL}, ("docker", None, "--target"), id="docker-vs-env"
        ),
        pytest.param(None, None, {"REDIS_URL": "  "}, ("local", None, "default"), id="blank-env"),
    ],
)
def test_choice(
    option_target: str | None,
    option_url: str | None,
    env: dict[str, str],
    expected: tuple[str, str | None, str],
) -> None:
    choice = choose_target(option_target=option_target, option_url=option_url, env=env)
    assert (choice.name, choice.url, choice.source) == expected


@pytest.mark.parametrize(
    ("option_target", "option_url", "env", "message"),
    [
        pytest.param("local", URL, {}, "--redis-url only makes sense with --target url", id="l+u"),
        pytest.param("docker", URL, {}, "not --target docker", id="docker+url"),
        pytest.param("url", None, {}, "pass --redis-url URL or set REDIS_URL", id="url-no-url"),
        pytest.param("cloud", None, {}, "'cloud' is not a known target", id="unknown"),
        pytest.param("", None, {}, "--target is empty", id="empty-target"),
        pytest.param(None, "", {}, "--redis-url is empty", id="empty-url"),
        pytest.param(None, "http://h:1", {}, "must start with redis:// or rediss://", id="scheme"),
        pytest.param(None, "redis://h:99999", {}, "not a valid URL", id="bad-port"),
        pytest.param(None, "redis://", {}, "has no host", id="no-host"),
        pytest.param(None, None, {"REDIS_URL": "memcached://x"}, "REDIS_URL must", id="env-bad"),
    ],
)
def test_contradictions_and_bad_input_are_usage_errors(
    option_target: str | None, option_url: str | None, env: dict[str, str], message: str
) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        choose_target(option_target=option_target, option_url=option_url, env=env)


def test_unknown_target_lists_the_valid_ones() -> None:
    with pytest.raises(UsageError) as info:
        choose_target(option_target="prod", option_url=None, env={})
    assert "local, docker, url, stack" in str(info.value)


def test_errors_and_repr_never_show_the_password() -> None:
    with pytest.raises(UsageError) as info:
        choose_target(option_target="local", option_url=URL, env={})
    assert "s3cret" not in str(info.value)
    with pytest.raises(UsageError) as info:
        choose_target(option_target=None, option_url="redis://u:s3cret@h:notaport", env={})
    assert "s3cret" not in str(info.value)
    choice = choose_target(option_target=None, option_url=URL, env={})
    assert "s3cret" not in repr(choice)
    assert "app:***@cache.example.com" in repr(choice)


def test_choice_is_a_value() -> None:
    assert choose_target(option_target=None, option_url=None, env={}) == TargetChoice("local")


def test_every_target_name_has_exactly_one_builder() -> None:
    """choose_target can only decide on names the registry can build."""
    assert list(TARGET_BUILDERS) == list(TARGET_NAMES)


@pytest.mark.parametrize(
    ("kwargs", "env", "expected"),
    [
        pytest.param({"option_stack": "dev"}, {}, ("stack", "--stack"), id="stack-means-stack"),
        pytest.param(
            {"option_stack_outputs": "out.json"},
            {},
            ("stack", "--stack-outputs"),
            id="outputs-mean-stack",
        ),
        pytest.param(
            {"option_stack": "dev"}, {"REDIS_URL": ENV_URL}, ("stack", "--stack"), id="beats-env"
        ),
        pytest.param(
            {"option_target": "stack", "option_stack": "dev"},
            {},
            ("stack", "--target"),
            id="explicit-stack-with-name",
        ),
    ],
)
def test_a_stack_option_without_target_means_the_stack(
    kwargs: dict[str, str], env: dict[str, str], expected: tuple[str, str]
) -> None:
    """The stack options alone pick the stack target; before, they were ignored and the run
    went green on the local target while claiming to test the stack."""
    kwargs.setdefault("option_target", None)  # type: ignore[arg-type]
    choice = choose_target(option_url=None, env=env, **kwargs)
    assert (choice.name, choice.source) == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {"option_target": "local", "option_stack": "dev"},
            "--stack only makes sense with --target stack, not --target local",
            id="local+stack",
        ),
        pytest.param(
            {"option_target": "url", "option_url": URL, "option_stack_outputs": "o.json"},
            "--stack-outputs only makes sense with --target stack",
            id="url+outputs",
        ),
        pytest.param(
            {"option_url": URL, "option_stack": "dev"},
            "--redis-url and --stack name two targets",
            id="redis-url+stack",
        ),
        pytest.param(
            {"option_stack": "dev", "option_stack_outputs": "o.json"},
            "either --stack NAME or --stack-outputs FILE, not both",
            id="both-stack-options",
        ),
        pytest.param({"option_stack": " "}, "--stack is empty", id="empty-stack"),
    ],
)
def test_stack_options_that_contradict_are_usage_errors(
    kwargs: dict[str, str | None], message: str
) -> None:
    kwargs.setdefault("option_target", None)
    kwargs.setdefault("option_url", None)
    with pytest.raises(UsageError, match=re.escape(message)) as info:
        choose_target(env={}, **kwargs)
    assert "s3cret" not in str(info.value)


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        pytest.param(["-k", "c05"], {}, "local", id="pytest-args-only"),
        pytest.param(["--stack", "dev", "-k", "c05"], {}, "stack", id="stack"),
        pytest.param(["--stack-outputs=/nonexistent.json"], {}, "stack", id="outputs-equals"),
        pytest.param(["--redis-url", URL], {}, "url", id="redis-url"),
        pytest.param([], {"REDIS_URL": ENV_URL}, "url", id="env"),
        pytest.param(["--target=docker"], {"REDIS_URL": ENV_URL}, "docker", id="target-equals"),
    ],
)
def test_a_command_line_is_read_the_way_the_plugin_reads_it(
    args: list[str], env: dict[str, str], expected: str
) -> None:
    assert choose_target_from_args(args, env).name == expected


def test_a_command_line_with_contradicting_targets_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--stack only makes sense with --target stack"):
        choose_target_from_args(["--target", "local", "--stack", "dev"], {})


# -- --docker-image --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option_target", "env", "expected_source"),
    [
        pytest.param(None, {}, "--docker-image", id="image-alone-means-docker"),
        pytest.param("docker", {}, "--target", id="with-target-docker"),
        pytest.param(None, {"REDIS_URL": ENV_URL}, "--docker-image", id="image-beats-env"),
    ],
)
def test_a_docker_image_chooses_the_docker_target(
    option_target: str | None, env: dict[str, str], expected_source: str
) -> None:
    choice = choose_target(
        option_target=option_target,
        option_url=None,
        option_docker_image="valkey/valkey:8.1",
        env=env,
    )
    assert (choice.name, choice.url, choice.source) == ("docker", None, expected_source)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {"option_target": "local"},
            "--docker-image only makes sense with --target docker, not --target local",
            id="other-target",
        ),
        pytest.param(
            {"option_url": URL}, "--docker-image and --redis-url name two targets", id="url"
        ),
        pytest.param(
            {"option_stack": "dev"}, "--docker-image and --stack name two targets", id="stack"
        ),
        pytest.param({"image": ""}, "--docker-image is empty", id="empty"),
        pytest.param(
            {"image": "redis 7"}, "--docker-image 'redis 7' is not an image reference", id="space"
        ),
    ],
)
def test_docker_image_contradictions_are_usage_errors(kwargs: dict[str, str], message: str) -> None:
    image = kwargs.pop("image", "redis:7.2")
    options: dict[str, str | None] = {"option_target": None, "option_url": None, **kwargs}
    with pytest.raises(UsageError, match=re.escape(message)):
        choose_target(**options, option_docker_image=image, env={})


@pytest.mark.parametrize(
    "args",
    [["--docker-image", "redis:7.0"], ["--docker-image=valkey/valkey:7.2", "-k", "c05"]],
)
def test_scripts_read_a_docker_image_as_the_plugin_does(args: list[str]) -> None:
    """./scripts/conformance asks this, so it does not install redis-server for a docker run."""
    assert choose_target_from_args(args, {"REDIS_URL": ENV_URL}).name == "docker"


@pytest.mark.parametrize(
    ("image", "server"),
    [
        ("redis:7", "redis-server"),
        ("redis:7.0", "redis-server"),
        ("docker.io/library/redis:7.2-alpine", "redis-server"),
        ("valkey/valkey:7.2", "valkey-server"),
        ("valkey/valkey:8.1", "valkey-server"),
        ("ghcr.io/valkey-io/valkey@sha256:" + "0" * 64, "valkey-server"),
        ("registry.example:5000/valkey-mirror/redis:7", "redis-server"),  # the name decides
    ],
)
def test_the_server_command_follows_the_image(image: str, server: str) -> None:
    assert docker_server_command(image, "pw") == [server, "--requirepass", "pw"]
