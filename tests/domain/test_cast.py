"""The pure rules of characters and styles: names, `@Name` → `@ElementN`, the prompt as sent, the combined
reference cap — and the provider request built from a job, checked against the simulator's copy of the
provider's rules."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.domain.cast import (
    CastMember,
    compose_prompt,
    name_key,
    name_problem,
    reference_problems,
    rewrite_mentions,
    sent_prompt_problem,
)
from bot.domain.jobs import Job, JobStatus
from bot.domain.styles import StyleChoice
from bot.services.generation import generation_request
from bot.sim.aimlapi_rules import validate_submit
from tests.fakes import references


def member(name: str, angles: int = 2) -> CastMember:
    urls = tuple(f"https://cdn.example.test/{name}/{n}.png" for n in range(1, angles + 1))
    return CastMember(name, 1, 2, tuple(range(angles + 1)), f"https://cdn.example.test/{name}/front.png", urls)


@pytest.mark.parametrize("name", ["Fox", "Captain Fox", "R2-D2", "Dr. Who", "O'Brien", "Лиса", "狐", "2049"])
def test_good_names(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize(
    "name", ["", "x" * 33, "#12", "@Fox", "Fox*", "`Fox`", "Fox\nbar", " Fox", "-Fox", "<@123>", "Fox_"]
)
def test_names_that_could_break_a_message_or_a_prompt_are_refused(name: str) -> None:
    assert name_problem(name) is not None


def test_names_compare_without_case_or_extra_spaces() -> None:
    assert name_key("  Captain   FOX ") == name_key("captain fox")


def test_at_names_become_element_numbers_and_nothing_else_changes() -> None:
    names = ["Fox", "Fox Jr", "Owl"]
    prompt = "@fox chases @Fox Jr past @OWL; the Fox sleeps, email@Foxes.com, @Element2 and @Owlet stay"
    assert rewrite_mentions(prompt, names) == (
        "@Element1 chases @Element2 past @Element3; the Fox sleeps, email@Foxes.com, @Element2 and @Owlet stay"
    )
    assert rewrite_mentions("@Fox", []) == "@Fox"


def test_the_prompt_as_sent_adds_the_style_as_its_own_paragraph() -> None:
    assert compose_prompt("@Fox runs", ["Fox"], "noir, grainy") == "@Element1 runs\n\nnoir, grainy"
    assert compose_prompt("a cat", [], None) == "a cat"


def test_images_plus_characters_are_capped_at_seven_and_a_name_twice_is_refused() -> None:
    assert reference_problems(3, [member("A"), member("B"), member("C"), member("D")]) == []
    [problem] = reference_problems(4, [member("A"), member("B"), member("C"), member("D")])
    assert "4 images and 4 characters make 8 references" in problem
    [twice] = reference_problems(1, [member("Fox"), member("fox")])
    assert "Two characters named **fox**" in twice


def test_a_style_pushing_the_prompt_over_the_limit_is_named() -> None:
    style = StyleChoice("Noir", "n" * 100)
    assert sent_prompt_problem("p" * 2398, [], style) is None  # 2398 + 2 + 100 = 2500
    problem = sent_prompt_problem("p" * 2399, [], style)
    assert problem is not None
    assert "With the style **Noir** added, the prompt is 2501 characters" in problem
    assert "by 1 characters" in problem
    assert sent_prompt_problem("p" * 2501, [], style) is None  # the prompt alone is reported elsewhere
    rewritten = sent_prompt_problem("@A " * 833, [member("A")], None)
    assert rewritten is not None
    assert "@Element1" in rewritten


def job(**fields: object) -> Job:
    base = Job(
        id=1,
        guild_id=1,
        channel_id=1,
        user_id=1,
        prompt="@Fox meets @Owl in image 1",
        duration=10,
        aspect_ratio="9:16",
        model="klingai/video-o1-reference-to-video",
        references=references(3),
        status=JobStatus.QUEUED,
        created_at=0.0,
        updated_at=0.0,
        delivery_nonce="n",
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def test_the_provider_request_carries_elements_the_prompt_as_sent_and_at_most_three_angles() -> None:
    cast = (member("Fox", angles=4), member("Owl", angles=1), member("Cat"), member("Dog"))
    request = generation_request(job(characters=cast, style_name="Noir", style_text="noir"))
    body = request.to_json()
    assert body["prompt"] == "@Element1 meets @Element2 in image 1\n\nnoir"
    assert body["image_list"] == [r.url for r in references(3)]
    elements = body["elements"]
    assert isinstance(elements, list)
    assert elements[0] == {
        "frontal_image_url": "https://cdn.example.test/Fox/front.png",
        "reference_image_urls": [f"https://cdn.example.test/Fox/{n}.png" for n in (1, 2, 3)],
    }
    assert [len(e["reference_image_urls"]) for e in elements] == [3, 1, 2, 2]
    assert validate_submit(body) is None  # what the provider would accept

    plain = generation_request(job()).to_json()
    assert "elements" not in plain
    assert plain["prompt"] == "@Fox meets @Owl in image 1"
