"""The submit-body rules of the simulated AI/ML API (Kling Video O1 reference-to-video): the model's OpenAPI
schema, plus the provider's stricter rules where its sources disagree. `validate_submit` answers like aimlapi's
body validation (zod-style wording); `reference_urls` lists the images a valid body asks the provider to fetch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["SUBMIT_RULES", "SubmitRules", "reference_urls", "validate_submit"]


@dataclass(frozen=True)
class SubmitRules:
    """The submit-body rules: first those of the model's OpenAPI schema, in one place so a test can diff them
    against it; then the provider's stricter rules where its sources disagree with the schema (see below)."""

    model_enum: tuple[str, ...]
    required: tuple[str, ...]
    allowed_keys: tuple[str, ...]
    prompt_max_length: int
    image_list_min_items: int
    image_list_max_items: int
    elements_max_items: int
    element_required: tuple[str, ...]
    element_reference_min_items: int
    element_reference_max_items: int
    aspect_ratio_enum: tuple[str, ...]
    duration_enum: tuple[int, ...]
    # Stricter than the schema. The schema allows 1–4 other angles per element and caps `image_list` (7) and
    # `elements` (4) separately; the upstream model's own documentation says 1–3 angles per element and at most
    # 7 references in total (images plus elements), and a client of it reported exactly that refusal. We assume
    # the stricter reading, as a client must.
    element_reference_provider_max_items: int
    references_total_max_items: int


SUBMIT_RULES = SubmitRules(
    model_enum=("klingai/video-o1-reference-to-video",),
    required=("model", "prompt"),
    allowed_keys=("model", "prompt", "image_list", "elements", "aspect_ratio", "duration", "provider"),
    prompt_max_length=2500,
    image_list_min_items=1,
    image_list_max_items=7,
    elements_max_items=4,
    element_required=("reference_image_urls", "frontal_image_url"),
    element_reference_min_items=1,
    element_reference_max_items=4,
    aspect_ratio_enum=("16:9", "9:16", "1:1"),
    duration_enum=(5, 10),
    element_reference_provider_max_items=3,
    references_total_max_items=7,
)


def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return bool(parts.scheme) and (bool(parts.netloc) or parts.scheme == "data")


def validate_submit(body: object, rules: SubmitRules = SUBMIT_RULES) -> str | None:
    """None when `body` is acceptable, else the validation detail (zod-style wording, like aimlapi's)."""
    if not isinstance(body, dict):
        return "Expected object, received " + type(body).__name__
    unknown = [k for k in body if k not in rules.allowed_keys]
    if unknown:
        return "Unrecognized key(s) in object: " + ", ".join(f"'{k}'" for k in unknown)
    for key in rules.required:
        if key not in body:
            return f"{key}: Required"
    if body["model"] not in rules.model_enum:
        return f"model: Invalid enum value. Expected {' | '.join(rules.model_enum)}, received '{body['model']}'"
    prompt = body["prompt"]
    if not isinstance(prompt, str):
        return "prompt: Expected string, received " + type(prompt).__name__
    if len(prompt) > rules.prompt_max_length:
        return f"prompt: String must contain at most {rules.prompt_max_length} character(s)"
    if "image_list" in body:
        images = body["image_list"]
        if not isinstance(images, list):
            return "image_list: Expected array"
        if not rules.image_list_min_items <= len(images) <= rules.image_list_max_items:
            return (
                f"image_list: Array must contain between {rules.image_list_min_items} and "
                f"{rules.image_list_max_items} element(s)"
            )
        for i, url in enumerate(images):
            if not _is_uri(url):
                return f"image_list.{i}: Invalid url"
    if "elements" in body:
        problem = _validate_elements(body["elements"], rules)
        if problem:
            return problem
        total = len(body.get("image_list") or []) + len(body["elements"])
        if total > rules.references_total_max_items:
            return (
                f"image_list, elements: At most {rules.references_total_max_items} images and elements "
                f"in total, received {total}"
            )
    if "aspect_ratio" in body and body["aspect_ratio"] not in rules.aspect_ratio_enum:
        expected = " | ".join(f"'{a}'" for a in rules.aspect_ratio_enum)
        return f"aspect_ratio: Invalid enum value. Expected {expected}, received '{body['aspect_ratio']}'"
    if "duration" in body:
        duration = body["duration"]
        # The schema types duration as integer; bool is an int subclass in Python but not in JSON.
        if isinstance(duration, bool) or duration not in rules.duration_enum or not isinstance(duration, int):
            expected = " | ".join(str(d) for d in rules.duration_enum)
            return f"duration: Invalid enum value. Expected {expected}, received {json.dumps(duration)}"
    if "provider" in body and not isinstance(body["provider"], str):
        return "provider: Expected string"
    return None


def _validate_elements(elements: object, rules: SubmitRules) -> str | None:
    if not isinstance(elements, list):
        return "elements: Expected array"
    if len(elements) > rules.elements_max_items:
        return f"elements: Array must contain at most {rules.elements_max_items} element(s)"
    low, high = rules.element_reference_min_items, rules.element_reference_provider_max_items
    for i, element in enumerate(elements):
        if not isinstance(element, dict):
            return f"elements.{i}: Expected object"
        # Refused like unknown top-level keys: a misspelt key would otherwise be dropped without a word.
        unknown = [k for k in element if k not in rules.element_required]
        if unknown:
            return f"elements.{i}: Unrecognized key(s) in object: " + ", ".join(f"'{k}'" for k in unknown)
        for key in rules.element_required:
            if key not in element:
                return f"elements.{i}.{key}: Required"
        if not _is_uri(element["frontal_image_url"]):
            return f"elements.{i}.frontal_image_url: Invalid url"
        refs = element["reference_image_urls"]
        if not isinstance(refs, list):
            return f"elements.{i}.reference_image_urls: Expected array"
        if not low <= len(refs) <= high:
            return f"elements.{i}.reference_image_urls: Array must contain between {low} and {high} element(s)"
        for j, url in enumerate(refs):
            if not _is_uri(url):
                return f"elements.{i}.reference_image_urls.{j}: Invalid url"
    return None


def reference_urls(body: dict[str, object]) -> list[tuple[str, str]]:
    """Every image URL of a (valid) submit body with the name the provider's errors give it, in body order:
    `image_list[0]`, …, `elements[0].frontal_image_url`, `elements[0].reference_image_urls[0]`, …"""
    images = body.get("image_list")
    named = [(f"image_list[{i}]", str(url)) for i, url in enumerate(images if isinstance(images, list) else [])]
    elements = body.get("elements")
    for i, element in enumerate(elements if isinstance(elements, list) else []):
        named.append((f"elements[{i}].frontal_image_url", str(element["frontal_image_url"])))
        for j, url in enumerate(element["reference_image_urls"]):
            named.append((f"elements[{i}].reference_image_urls[{j}]", str(url)))
    return named
