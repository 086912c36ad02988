"""Evolution, answer and judge templates: a versioned data file users can edit (templates/code_evol.yaml).

Every record a template produced carries `Templates.tag` ("code-evol@v1+<hash of the file>"), so
records evolved with different wording are never mixed up, and the embedded default teacher is
rebuilt when the wording it was trained on changes. Placeholders are replaced literally ({instruction},
{parent}, {child}): tasks and code are full of braces, so str.format is never used on them.
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

from rrtf.seeds import derive_seed

DEFAULT_TEMPLATES = Path(__file__).resolve().parent / "templates" / "code_evol.yaml"
METHODS = ("constraints", "specific", "reasoning", "misdirection", "complexity", "contest")


@dataclass(frozen=True)
class Method:
    name: str
    weight: float
    template: str


@dataclass(frozen=True)
class Templates:
    name: str
    version: str
    digest: str  # sha256 of the file's bytes
    evolve_system: str
    methods: dict[str, Method]
    answer_system: str
    answer_template: str
    judge_system: str
    judge_template: str
    leak_phrases: tuple[str, ...]
    path: str = ""

    @property
    def tag(self) -> str:
        return f"{self.name}@v{self.version}+{self.digest[:8]}"

    def evolve_messages(self, method: str, instruction: str) -> list[dict[str, str]]:
        return _chat(self.evolve_system, self.methods[method].template.replace("{instruction}", instruction))

    def answer_messages(self, instruction: str) -> list[dict[str, str]]:
        return _chat(self.answer_system, self.answer_template.replace("{instruction}", instruction))

    def judge_messages(self, parent: str, child: str) -> list[dict[str, str]]:
        # child first: a parent that happens to contain "{child}" must not be substituted into
        return _chat(self.judge_system, self.judge_template.replace("{child}", child).replace("{parent}", parent))

    def choose_method(self, seed: int, *names: object, allowed: tuple[str, ...] | None = None) -> str:
        """A method drawn by weight from the stream named by `names` (e.g. the seed id and round)."""
        pool = [m for m in self.methods.values() if (allowed is None or m.name in allowed) and m.weight > 0]
        if not pool:
            raise ValueError(f"no evolution method left to choose from (allowed: {allowed}; templates: {', '.join(self.methods)})")
        rng = random.Random(derive_seed(seed, "evol-method", *names))
        return rng.choices([m.name for m in pool], weights=[m.weight for m in pool])[0]


def _chat(system: str, user: str) -> list[dict[str, str]]:
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]


def _text(data: dict, where: str, field: str, placeholders: tuple[str, ...] = (), required: bool = True) -> str:
    value = data.get(field, None if required else "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise ValueError(f"{where}: field {field!r}: expected a non-empty string, got {type(value).__name__}")
    for p in placeholders:
        if "{" + p + "}" not in value:
            raise ValueError(f"{where}: field {field!r} must contain the placeholder {{{p}}}")
    return value


def load_templates(path: str | Path | None = None) -> Templates:
    """Templates from a YAML file (default: the shipped one); errors name the file and the field."""
    import yaml

    path = Path(path or DEFAULT_TEMPLATES)
    if not path.is_file():
        raise FileNotFoundError(f"templates file {path} does not exist")
    raw = path.read_bytes()
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    where = str(path)
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping at the top level")
    evolve, answer, judge = (data.get(k) or {} for k in ("evolve", "answer", "judge"))
    if not isinstance(evolve, dict) or not isinstance(evolve.get("methods"), dict) or not evolve["methods"]:
        raise ValueError(f"{where}: field 'evolve.methods': expected a mapping of method name -> {{weight, template}}")
    methods = {}
    for name, spec in evolve["methods"].items():
        if not isinstance(spec, dict):
            raise ValueError(f"{where}: field 'evolve.methods.{name}': expected a mapping with 'template' and 'weight'")
        weight = spec.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            raise ValueError(f"{where}: field 'evolve.methods.{name}.weight': expected a number >= 0, got {weight!r}")
        methods[str(name)] = Method(str(name), float(weight), _text(spec, where, "template", ("instruction",)).rstrip())
    leaks = data.get("leak_phrases") or []
    if not isinstance(leaks, list) or not all(isinstance(x, str) and x for x in leaks):
        raise ValueError(f"{where}: field 'leak_phrases': expected a list of strings")
    return Templates(
        name=str(data.get("name") or path.stem), version=str(data.get("version", "0")), digest=hashlib.sha256(raw).hexdigest(),
        evolve_system=_text(evolve, where, "system", required=False).strip(), methods=methods,
        answer_system=_text(answer, where, "system", required=False).strip(),
        answer_template=_text(answer, where, "template", ("instruction",)).rstrip(),
        judge_system=_text(judge, where, "system", required=False).strip(),
        judge_template=_text(judge, where, "template", ("parent", "child")).rstrip(),
        leak_phrases=tuple(leaks), path=str(path),
    )


__all__ = ["DEFAULT_TEMPLATES", "METHODS", "Method", "Templates", "load_templates"]
