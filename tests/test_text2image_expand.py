"""Prompt expansion: the subject noun survives for 50 game-asset prompts, the expanded prompt stays within the
token limit (counted with a tokenizer built here, and with the conservative estimate), and the optional instruct
model is used only when its text still names the subject."""

import json
import re

import pytest

from server.errors import InputError
from server.text2image.expand import NEGATIVE_PROMPT, REQUIREMENTS, expand_prompt, find_subject
from server.text2image.tokens import CONSERVATIVE, conservative_count, load_counter, tokenizer_counter

# (prompt, its subject noun): written by hand, the way people describe props, characters and scenery.
PROMPTS = [
    ("a wooden barrel", "barrel"),
    ("a medieval wooden barrel with iron bands", "barrel"),
    ("rusty sci-fi crate with glowing blue panels", "crate"),
    ("a photo of an old leather armchair", "armchair"),
    ("low poly treasure chest, gold coins spilling out", "chest"),
    ("on a wooden table, a brass oil lantern", "lantern"),
    ("an ornate elven sword with a curved blade", "sword"),
    ("cartoon mushroom house", "house"),
    ("a stone well covered in moss", "well"),
    ("a 3d model of a vintage typewriter", "typewriter"),
    ("wizard's staff topped with a crystal", "staff"),
    ("a red fire hydrant", "hydrant"),
    ("concept art of a steampunk airship, brass propellers, canvas balloon", "airship"),
    ("a cute robot holding a flower", "robot"),
    ("knight in full plate armor standing", "knight"),
    ("a potted cactus in a terracotta pot", "cactus"),
    ("a broken wooden cart wheel", "wheel"),
    ("a viking shield painted red and white", "shield"),
    ("a glowing mushroom lamp", "lamp"),
    ("an alien plant that glows at night", "plant"),
    ("a rendering of a modern office chair on casters", "chair"),
    ("a dragon skull, cracked and weathered", "skull"),
    ("a glass potion bottle filled with green liquid", "bottle"),
    ("an anvil on a tree stump", "anvil"),
    ("a cozy fantasy tavern sign hanging from a post", "sign"),
    ("game-ready sci-fi pistol", "pistol"),
    ("a hooded rogue character", "character"),
    ("a worn leather backpack with rolled blanket", "backpack"),
    ("a small wooden rowboat", "rowboat"),
    ("golden chalice decorated with rubies", "chalice"),
    ("a marble statue of a lion", "statue"),
    ("a stack of old books", "stack"),
    ("a gold ring with a ruby", "ring"),
    ("a wrought iron street lamp", "lamp"),
    ("an ancient stone totem carved with runes", "totem"),
    ("a pirate cannon on wheels", "cannon"),
    ("a picture of a ceramic teapot with a bamboo handle", "teapot"),
    ("a mechanical spider drone", "drone"),
    ("a giant mushroom, red cap with white spots", "mushroom"),
    ("low-poly campfire with logs and stones", "campfire"),
    ("a crystal cluster growing from a rock", "cluster"),
    ("a hanging lantern of black iron", "lantern"),
    ("an overgrown ruined pillar", "pillar"),
    ("a wooden crossbow with a loaded bolt", "crossbow"),
    ("a fluffy cartoon sheep", "sheep"),
    ("a post-apocalyptic gas mask", "mask"),
    ("a treasure map scroll tied with string", "scroll"),
    ("a sci-fi cryo pod with frosted glass", "pod"),
    ("beside a fence, a tall scarecrow wearing a straw hat", "scarecrow"),
    ("a rune-covered magic orb floating above a pedestal", "orb"),
]


def char_clip_tokenizer():
    """A character-level CLIP tokenizer (one token per letter): the worst case a 77-token limit can meet."""
    from tests.test_text2image_models import clip_tokenizer

    return clip_tokenizer()


@pytest.fixture(scope="module")
def transformers_ready():
    pytest.importorskip("transformers", reason="transformers is not installed")


def test_there_are_fifty_distinct_prompts():
    assert len(PROMPTS) == 50 and len({prompt for prompt, _ in PROMPTS}) == 50


@pytest.mark.parametrize("prompt, noun", PROMPTS)
def test_the_subject_noun_is_found(prompt, noun):
    assert find_subject(prompt).noun == noun


@pytest.mark.parametrize("prompt, noun", PROMPTS)
def test_a_256_token_expansion_keeps_the_whole_prompt_and_every_requirement(prompt, noun):
    expanded = expand_prompt(prompt, token_limit=256)
    assert expanded.prompt.startswith(prompt)  # nothing of the user's was dropped
    assert all(requirement in expanded.prompt for requirement in REQUIREMENTS)
    assert expanded.tokens == conservative_count(expanded.prompt) <= 256
    assert expanded.subject == noun and expanded.requirements_dropped == ()
    assert expanded.negative == NEGATIVE_PROMPT and "shadow" in expanded.negative and "text" in expanded.negative


@pytest.mark.parametrize("limit", [77, 40])
def test_every_prompt_keeps_its_noun_within_a_tight_limit_counted_by_a_real_tokenizer(limit, transformers_ready):
    tokenizer = char_clip_tokenizer()
    counter = tokenizer_counter(tokenizer, "test CLIP (characters)")
    for prompt, noun in PROMPTS:
        expanded = expand_prompt(prompt, token_limit=limit, counter=counter)
        ids = tokenizer(expanded.prompt, truncation=False)["input_ids"]
        assert len(ids) == expanded.tokens <= limit, (prompt, expanded.prompt)
        assert re.search(rf"\b{noun}\b", expanded.details), (prompt, expanded.prompt)
        assert expanded.prompt.startswith(expanded.details)
        assert expanded.counted_with == "tokenizer test CLIP (characters)"
        # The most important requirement goes last: it is there unless even the bare noun is too long for it.
        if counter(f"{noun}, {REQUIREMENTS[0]}") <= limit:
            assert REQUIREMENTS[0] in expanded.prompt, (prompt, expanded.prompt)


def test_details_go_before_requirements_and_requirements_before_the_subject():
    prompt = ("a medieval wooden barrel with iron bands, moss growing on the lid, dripping water, old and worn, "
              "standing in a dark cellar")
    full = expand_prompt(prompt, token_limit=256)
    assert full.details == prompt
    squeezed = expand_prompt(prompt, token_limit=60)
    assert squeezed.details == "a medieval wooden barrel"  # trailing clauses dropped, the noun phrase kept
    assert squeezed.requirements_dropped and squeezed.requirements_dropped == REQUIREMENTS[-len(
        squeezed.requirements_dropped):]  # the least important went first
    tight = expand_prompt(prompt, token_limit=12)
    assert "barrel" in tight.prompt and tight.tokens <= 12
    assert len(tight.prompt) < len(squeezed.prompt) < len(full.prompt)


def test_a_limit_too_small_for_the_noun_is_refused_by_name():
    with pytest.raises(InputError) as refused:
        expand_prompt("a wooden barrel", token_limit=3)
    assert refused.value.argument == "token_limit"
    with pytest.raises(InputError) as refused:
        expand_prompt("a wooden barrel", token_limit=True)
    assert refused.value.argument == "token_limit"


@pytest.mark.parametrize("prompt, noun", PROMPTS)
def test_the_conservative_count_is_at_least_one_token_a_word_plus_the_end(prompt, noun):
    # Every tokenizer of our models gives each word at least one token and adds an end token.
    assert conservative_count(prompt) >= len(prompt.split()) + 1


def test_non_ascii_text_counts_heavier_than_ascii():
    assert conservative_count("café") > conservative_count("cafe")
    assert conservative_count("樽") >= 3 + 2


def test_the_models_own_tokenizer_is_loaded_from_its_folder(tmp_path, transformers_ready):
    from tests.test_text2image_models import t5_tokenizer

    t5_tokenizer().save_pretrained(tmp_path / "tokenizer_2")
    counter = load_counter(str(tmp_path), "tokenizer_2")
    assert counter.source == f"tokenizer {tmp_path}/tokenizer_2"
    text = "a wooden barrel, plain white background"
    assert counter(text) == len(t5_tokenizer()(text)["input_ids"]) and counter(text) != conservative_count(text)
    assert load_counter(str(tmp_path), "tokenizer_3") is CONSERVATIVE  # no such folder
    assert load_counter(None, "tokenizer_2") is CONSERVATIVE


WORDS = ["barrel", "wooden", "oak", "iron", "a", "with", "bands", "the", "of", "and"]


def tiny_instruct(folder):
    """A tiny Llama causal LM with a word-level tokenizer and a chat template, saved to `folder`. Its final norm
    is zeroed, so every logit is 0 and greedy decoding picks token 0, 'barrel', every time: whatever it is
    asked, it describes a barrel."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {word: index for index, word in enumerate(WORDS)}
    for special in ("<unk>", "<s>", "</s>", "<pad>"):
        vocab[special] = len(vocab)
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", bos_token="<s>",
                                        eos_token="</s>", pad_token="<pad>")
    tokenizer.chat_template = "{% for message in messages %}{{ message['content'] }} {% endfor %}"
    torch.manual_seed(3)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                                         max_position_embeddings=256, bos_token_id=vocab["<s>"],
                                         eos_token_id=vocab["</s>"], pad_token_id=vocab["<pad>"]))
    with torch.no_grad():
        model.model.norm.weight.zero_()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def instruct(monkeypatch, tmp_path, transformers_ready):
    pytest.importorskip("torch", reason="PyTorch is not installed")
    from server.text2image import instruct as module

    module._load.cache_clear()
    yield module
    module._load.cache_clear()


def test_the_instruct_model_is_used_when_it_names_the_subject(instruct, monkeypatch, tmp_path):
    monkeypatch.setenv(instruct.WEIGHTS_ENV, str(tiny_instruct(tmp_path / "lm")))
    describer = instruct.describer("instruct")
    expanded = expand_prompt("an oak barrel", token_limit=256, describer=describer)
    assert expanded.expander == f"instruct {tmp_path / 'lm'}"
    assert expanded.details.startswith("barrel barrel")  # the model's words, not the user's
    assert expanded.original == "an oak barrel" and expanded.tokens <= 256


def test_an_instruct_model_that_drops_the_subject_falls_back_to_the_template(instruct, monkeypatch, tmp_path):
    folder = tiny_instruct(tmp_path / "lm")
    monkeypatch.setenv(instruct.WEIGHTS_ENV, str(folder))
    said = instruct.InstructDescriber(str(folder)).describe("a brass lantern", find_subject("a brass lantern"))
    assert said.startswith("barrel") and "lantern" not in said
    expanded = expand_prompt("a brass lantern", token_limit=256, describer=instruct.describer("instruct"))
    assert expanded.expander.startswith("template (instruct") and "dropped the subject 'lantern'" in expanded.expander
    assert expanded.details == "a brass lantern"


def test_asking_for_an_instruct_model_that_is_not_here_is_refused(instruct, monkeypatch, tmp_path):
    monkeypatch.setenv(instruct.WEIGHTS_ENV, str(tmp_path))  # no config.json there
    with pytest.raises(InputError) as refused:
        instruct.describer("instruct")
    assert refused.value.argument == "options.expander" and "has no config.json" in str(refused.value)


def test_the_record_is_json_ready():
    record = expand_prompt("a wooden barrel", token_limit=77).record()
    assert json.loads(json.dumps(record))["subject"] == "barrel"
    assert set(record) >= {"prompt", "negative", "subject", "tokens", "token_limit", "counted_with", "expander"}
