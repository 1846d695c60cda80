"""The simulator's submit rules and answers checked against the AI/ML API's published OpenAPI files.

The spec files live in the team's shared folder, not in the project. `REELBOT_SPECS_DIR` names that folder
(`.ci/run` sets it): set but missing files is a failure; unset means a checkout outside the team, so skip.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest

from bot.sim.aimlapi import SUBMIT_RULES, AimlSimulator, JobScript, validate_submit

SUBMIT_SPEC = "aimlapi-video-o1-reference-to-video.json"
FETCH_SPEC = "aimlapi-video-fetch.json"
KEY = "sk-spec-test-key"
MODEL = "klingai/video-o1-reference-to-video"


@pytest.fixture(scope="module")
def specs_dir() -> Path:
    folder = os.environ.get("REELBOT_SPECS_DIR")
    if not folder:
        pytest.skip("REELBOT_SPECS_DIR is not set, so the shared AI/ML API spec files are not available here")
    path = Path(folder)
    missing = [name for name in (SUBMIT_SPEC, FETCH_SPEC) if not (path / name).is_file()]
    if missing:
        pytest.fail(f"REELBOT_SPECS_DIR={folder} is set but lacks {', '.join(missing)}")
    return path


def _load(folder: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / name).read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def request_schema(specs_dir: Path) -> dict[str, Any]:
    post = _load(specs_dir, SUBMIT_SPEC)["paths"]["/v2/video/generations"]["post"]
    schema: dict[str, Any] = post["requestBody"]["content"]["application/json"]["schema"]
    return schema


def _response_schema(operation: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = operation["responses"]["200"]["content"]["application/json"]["schema"]
    return _json_schema(schema)


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0 `nullable: true` → JSON Schema `type: [T, "null"]`, recursively."""
    if isinstance(node, dict):
        out = {k: _json_schema(v) for k, v in node.items() if k != "nullable"}
        if node.get("nullable") and "type" in node:
            out["type"] = [node["type"], "null"]
        return out
    if isinstance(node, list):
        return [_json_schema(v) for v in node]
    return node


def test_submit_rules_match_the_spec(request_schema: dict[str, Any]) -> None:
    props = request_schema["properties"]
    element = props["elements"]["items"]
    from_spec = {
        "model_enum": tuple(props["model"]["enum"]),
        "required": tuple(request_schema["required"]),
        "allowed_keys": tuple(props),
        "prompt_max_length": props["prompt"]["maxLength"],
        "image_list_min_items": props["image_list"]["minItems"],
        "image_list_max_items": props["image_list"]["maxItems"],
        "elements_max_items": props["elements"]["maxItems"],
        "element_required": tuple(element["required"]),
        "element_reference_min_items": element["properties"]["reference_image_urls"]["minItems"],
        "element_reference_max_items": element["properties"]["reference_image_urls"]["maxItems"],
        "aspect_ratio_enum": tuple(props["aspect_ratio"]["enum"]),
        "duration_enum": tuple(props["duration"]["enum"]),
    }
    ours = {name: getattr(SUBMIT_RULES, name) for name in from_spec}
    # Order of keys and enums does not matter; compare as sets where the spec lists alternatives.
    for name, value in from_spec.items():
        if isinstance(value, tuple):
            assert set(ours[name]) == set(value), name
        else:
            assert ours[name] == value, name
    assert props["duration"]["type"] == "integer"  # why the client sends an int, not "5"
    # The provider's stricter rules only ever narrow what the schema allows.
    assert SUBMIT_RULES.element_reference_provider_max_items <= from_spec["element_reference_max_items"]
    assert SUBMIT_RULES.references_total_max_items <= (
        from_spec["image_list_max_items"] + from_spec["elements_max_items"]
    )


def _element(angles: int) -> dict[str, Any]:
    return {
        "frontal_image_url": "https://a/f.png",
        "reference_image_urls": [f"https://a/r{i}.png" for i in range(angles)],
    }


def _with_elements(*elements: Any, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "prompt": "p", "elements": list(elements), **extra}


SAMPLES: list[dict[str, Any]] = [
    {"model": MODEL, "prompt": "p"},
    {"model": MODEL},
    {"prompt": "p"},
    {"model": "other", "prompt": "p"},
    {"model": MODEL, "prompt": "x" * 2500},
    {"model": MODEL, "prompt": "x" * 2501},
    {"model": MODEL, "prompt": 5},
    {"model": MODEL, "prompt": "p", "image_list": []},
    {"model": MODEL, "prompt": "p", "image_list": ["https://a/1.png"] * 7},
    {"model": MODEL, "prompt": "p", "image_list": ["https://a/1.png"] * 8},
    {"model": MODEL, "prompt": "p", "duration": 5},
    {"model": MODEL, "prompt": "p", "duration": 10},
    {"model": MODEL, "prompt": "p", "duration": 7},
    {"model": MODEL, "prompt": "p", "duration": "5"},
    {"model": MODEL, "prompt": "p", "aspect_ratio": "9:16"},
    {"model": MODEL, "prompt": "p", "aspect_ratio": "4:3"},
    {"model": MODEL, "prompt": "p", "provider": "fal"},
    {"model": MODEL, "prompt": "p", "negative_prompt": "blur"},
    {"model": MODEL, "prompt": "p", "elements": [{"frontal_image_url": "https://a/f.png"}]},
    _with_elements(_element(3)),
    _with_elements(_element(5)),
    _with_elements(*[_element(1)] * 4),
    _with_elements(*[_element(1)] * 5),
    _with_elements(),
    _with_elements({"reference_image_urls": ["https://a/r.png"]}),
    _with_elements({"frontal_image_url": 5, "reference_image_urls": ["https://a/r.png"]}),
    _with_elements({"frontal_image_url": "https://a/f.png", "reference_image_urls": "https://a/r.png"}),
    _with_elements({"frontal_image_url": "https://a/f.png", "reference_image_urls": []}),
    _with_elements("https://a/f.png"),
    _with_elements(*[_element(2)] * 4, image_list=["https://a/1.png"] * 3),
]

# Bodies the schema lets through but the provider refuses (the stricter readings the simulator assumes), with
# the part of the refusal that names the rule.
STRICTER: list[tuple[dict[str, Any], str]] = [
    (_with_elements(_element(4)), "elements.0.reference_image_urls: Array must contain between 1 and 3"),
    (_with_elements(*[_element(1)] * 4, image_list=["https://a/1.png"] * 4), "At most 7 images and elements in total"),
    (_with_elements(*[_element(1)] * 1, image_list=["https://a/1.png"] * 7), "received 8"),
    (_with_elements({**_element(1), "back_image_url": "https://a/b.png"}), "elements.0: Unrecognized key"),
]


@pytest.mark.parametrize("sample", SAMPLES)
def test_simulator_validation_agrees_with_the_schema(request_schema: dict[str, Any], sample: dict[str, Any]) -> None:
    # The real service refuses unknown keys (docs/provider.md, "Submit"), which the schema does not spell out.
    strict = copy.deepcopy(request_schema)
    strict["additionalProperties"] = False
    schema_ok = jsonschema.Draft7Validator(strict).is_valid(sample)
    assert (validate_submit(sample) is None) == schema_ok


@pytest.mark.parametrize(("sample", "rule"), STRICTER)
def test_simulator_is_stricter_only_where_the_provider_is(
    request_schema: dict[str, Any], sample: dict[str, Any], rule: str
) -> None:
    assert jsonschema.Draft7Validator(request_schema).is_valid(sample)
    problem = validate_submit(sample)
    assert problem is not None
    assert rule in problem


@pytest.fixture
async def sim() -> AsyncIterator[AimlSimulator]:
    simulator = AimlSimulator(KEY, fetch_images=False)
    await simulator.start()
    yield simulator
    await simulator.stop()


async def test_simulator_answers_match_the_response_schemas(specs_dir: Path, sim: AimlSimulator) -> None:
    submit_schema = _response_schema(_load(specs_dir, SUBMIT_SPEC)["paths"]["/v2/video/generations"]["post"])
    fetch_schema = _response_schema(_load(specs_dir, FETCH_SPEC)["paths"]["/v2/video/generations"]["get"])
    sim.script_next(
        JobScript(queued_s=1000),
        JobScript(queued_s=0, generating_s=0),
        JobScript(queued_s=0, generating_s=0, outcome="error", error_message="no"),
    )
    headers = {"Authorization": f"Bearer {KEY}"}
    url = sim.base_url + "/v2/video/generations"
    answers: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as http:
        for _ in range(3):
            async with http.post(url, json={"model": MODEL, "prompt": "p"}, headers=headers) as resp:
                created = await resp.json()
            jsonschema.validate(created, submit_schema)
            async with http.get(url, params={"generation_id": created["id"]}, headers=headers) as resp:
                answers.append(await resp.json())
    for answer in answers:
        jsonschema.validate(answer, fetch_schema)
    assert [a["status"] for a in answers] == ["queued", "completed", "error"]
