"""Prompt expansion for image-to-3D: the user's idea kept (its subject noun above all), what a clean concept
image needs added, and a negative prompt, all within the model's token limit."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from ..errors import InputError
from .prompt import check_prompt
from .tokens import CONSERVATIVE, TokenCounter

# What image-to-3D needs from a concept image, most important first: when the token budget is tight the last
# ones go first, after the user's own details.
REQUIREMENTS = (
    "plain white background",
    "one single isolated object",
    "whole object fully in frame",
    "three-quarter front view",
    "even soft lighting",
    "no shadow",
    "no text",
)
NEGATIVE_PROMPT = ("multiple objects, cropped, cut off, out of frame, cast shadow, floor, scene, busy background, "
                   "text, watermark, logo, blurry, low quality")

# Words that end the subject's noun phrase ("a barrel WITH iron bands", "a lantern ON a table"), and the
# framing phrases people put before the subject ("a photo of a barrel"). A tagger would do better, but none
# ships with data here; game-asset prompts are short noun phrases, and the tests hold 50 of them.
_PHRASE_ENDS = frozenset("""with on in of for from at by near under over above below beside behind inside into
onto made holding wearing that which who whose while and or but against covered standing sitting lying floating
hanging without having like to as featuring resting leaning set placed filled decorated painted carved
glowing""".split())
# A phrase that ends on a participle ("a staff topped", "a scroll tied") ends one word earlier: the participle
# belongs to the detail that follows. These nouns only look like participles.
_NOUNS_LIKE_PARTICIPLES = frozenset("""ring king wing string building painting ceiling swing sling earring pudding
railing awning clothing stocking bed shed sled steed seed reed weed""".split())
_DETERMINERS = frozenset("a an the one single some this that".split())
_PARTICLES = frozenset("out up down off away".split())
_SETTING_STARTS = frozenset("on in at under inside near beside behind from against atop within".split())
_FRAMING = re.compile(r"^(?:(?:an?|the)\s+)?(?:(?:low[- ]poly|stylized|stylised|realistic|3d|game|detailed|"
                      r"high[- ]quality)\s+)*(?:photo|photograph|picture|image|render|rendering|drawing|"
                      r"illustration|concept art|concept|model|asset|sketch|painting)\s+of\s+", re.IGNORECASE)
_CLAUSES = re.compile(r"\s*[,;:.!?]+\s*")
_WORD_CHARS = re.compile(r"[^\w'-]+")


@dataclass(frozen=True)
class Subject:
    """The object a prompt is about: its noun phrase as written and the head noun that must survive."""

    phrase: str
    noun: str


@dataclass(frozen=True)
class ExpandedPrompt:
    """The prompt a text-to-image model receives, its negative prompt, and how it was made."""

    prompt: str
    negative: str
    subject: str
    original: str
    details: str  # the part of the user's text (or the describer's) that the prompt keeps
    tokens: int
    token_limit: int
    counted_with: str
    expander: str
    requirements_dropped: tuple[str, ...] = ()  # requirements that did not fit, least important first dropped

    def record(self) -> dict:
        """A JSON-ready dict for the asset record."""
        return {**asdict(self), "requirements_dropped": list(self.requirements_dropped)}


def _clean_words(text: str) -> list[str]:
    return [word for word in text.split() if _WORD_CHARS.sub("", word)]


def _bare(word: str) -> str:
    return _WORD_CHARS.sub("", word).lower()


def _ends_phrase(word: str, phrase: list[str]) -> bool:
    """A detail word ends the phrase; a participle among them only once the phrase has more than a determiner
    ('a robot HOLDING a flower' ends there, 'a glowing orb' does not)."""
    bare = _bare(word)
    if bare not in _PHRASE_ENDS:
        return False
    return not _participle(bare) or any(_bare(earlier) not in _DETERMINERS for earlier in phrase)


def _participle(word: str) -> bool:
    word = _bare(word)
    return len(word) > 3 and word.endswith(("ed", "ing")) and word not in _NOUNS_LIKE_PARTICIPLES


def find_subject(text: str) -> Subject:
    """The subject of a short object prompt: the first clause that does not set a scene, without a framing
    phrase ('a photo of'), up to the first word that starts a detail ('with', 'on', ...); its last word is
    the head noun ('a rusty sci-fi crate with glowing panels' -> 'crate')."""
    clauses = [clause for clause in _CLAUSES.split(text) if clause.strip()]
    ordered = [c for c in clauses if c.split()[0].lower() not in _SETTING_STARTS] or clauses
    for clause in ordered:
        clause = _FRAMING.sub("", clause.strip())
        words = _clean_words(clause)
        phrase: list[str] = []
        for index, word in enumerate(words):
            if index > 0 and _ends_phrase(word, phrase):
                break
            phrase.append(word)
        while len(phrase) > 1 and (_participle(phrase[-1]) or _bare(phrase[-1]) in _PARTICLES):
            phrase.pop()
        if phrase:
            noun = _WORD_CHARS.sub("", phrase[-1]).strip("'-")
            if noun:
                return Subject(" ".join(phrase), noun)
    raise InputError("prompt", text, "a prompt that names an object, such as 'a wooden barrel'")


def _details(text: str, subject: Subject) -> list[str]:
    """Shorter and shorter versions of the user's text that all keep the subject: whole, then without its
    trailing clauses, then the subject's noun phrase, then fewer of its modifiers, down to the noun."""
    versions = [text]
    clauses = [clause for clause in _CLAUSES.split(text) if clause.strip()]
    keep = next((i for i, clause in enumerate(clauses) if subject.phrase in _FRAMING.sub("", clause)), 0)
    for stop in range(len(clauses) - 1, keep, -1):
        versions.append(", ".join(clauses[:stop]))
    if keep > 0:
        versions.append(clauses[keep])
    words = subject.phrase.split()
    for start in range(len(words)):
        versions.append(" ".join(words[start:]))
    unique: list[str] = []
    for version in versions:
        if version and version not in unique:
            unique.append(version)
    return unique


def compose(details: str, requirements: tuple[str, ...]) -> str:
    return ", ".join([details, *requirements])


def _mentions(text: str, noun: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(noun)}(?![\w-])", text, re.IGNORECASE) is not None


class Describer:
    """Turns the user's idea into a richer description of the object (the template keeps it as written)."""

    name = "template"

    def describe(self, text: str, subject: Subject) -> str:
        return text


def expand_prompt(prompt: str, *, token_limit: int, counter: TokenCounter = CONSERVATIVE,
                  describer: Describer | None = None) -> ExpandedPrompt:
    """Expand a user's prompt for a text-to-image model whose text encoder reads at most `token_limit` tokens
    (FLUX.1-schnell's T5: 256; CLIP: 77), counted by `counter` (the model's tokenizer, or a conservative
    estimate). The subject noun is always kept; the user's trailing details go first when the budget is tight,
    then the least important requirements. An optional `describer` (a small instruct model) may rewrite the
    idea first; its text is used only when it still names the subject."""
    text = check_prompt(prompt)
    if isinstance(token_limit, bool) or not isinstance(token_limit, int) or token_limit < 8:
        raise InputError("token_limit", token_limit, "a whole number of tokens, at least 8")
    subject = find_subject(text)
    source, note = text, "template"
    if describer is not None and describer.name != "template":
        described, note = _described(describer, text, subject)
        if described is not None:
            source = described
    for details, kept in _candidates(source, subject):
        candidate = compose(details, REQUIREMENTS[:kept])
        tokens = counter(candidate)
        if tokens <= token_limit:
            return ExpandedPrompt(candidate, NEGATIVE_PROMPT, subject.noun, text, details, tokens, token_limit,
                                  counter.source, note, REQUIREMENTS[kept:])
    raise InputError("token_limit", token_limit,
                     f"room for at least the subject '{subject.noun}' ({counter(subject.noun)} tokens counted "
                     f"by {counter.source})")


def _candidates(source: str, subject: Subject):
    """(details, requirements kept) from the longest prompt to the shortest: the user's clauses go first, then
    the least important requirements, then the subject's modifiers, and the last requirement only at the end."""
    versions = _details(source, subject)
    phrase = versions.index(subject.phrase) if subject.phrase in versions else len(versions) - 1
    for details in versions[:phrase + 1]:
        yield details, len(REQUIREMENTS)
    for kept in range(len(REQUIREMENTS) - 1, 0, -1):
        yield versions[phrase], kept
    for details in versions[phrase + 1:]:
        yield details, 1
    yield versions[-1], 0


def _described(describer: Describer, text: str, subject: Subject) -> tuple[str | None, str]:
    """The describer's text, or None and why it was not used."""
    try:
        described = describer.describe(text, subject)
    except Exception as exc:  # noqa: BLE001 - the template is the fallback for any failure of the model
        return None, f"template ({describer.name} failed: {type(exc).__name__}: {exc})"
    first_line = (described or "").strip().splitlines()[0].strip(" \"'") if (described or "").strip() else ""
    try:
        first_line = check_prompt(first_line, "described")
    except InputError as exc:
        return None, f"template ({describer.name} gave unusable text: {exc})"
    if not _mentions(first_line, subject.noun):
        return None, f"template ({describer.name} dropped the subject '{subject.noun}')"
    return first_line, describer.name

