"""YAML parsing that refuses a mapping naming the same key twice (PyYAML keeps the last value silently)."""

from __future__ import annotations

import yaml


class DuplicateYamlKey(yaml.YAMLError):
    """A mapping names `key` at `first` and again at `second` (1-based line numbers)."""

    def __init__(self, key: object, first: int, second: int) -> None:
        self.key, self.first, self.second = key, first, second
        super().__init__(f"{key} is set twice, on line {first} and on line {second}")


class UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader whose mappings refuse repeated keys (merge keys `<<` may still override, as YAML intends)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
        """The mapping, after checking that no key repeats."""
        seen: dict[object, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise DuplicateYamlKey(key, seen[key], line)
            seen.setdefault(key, line) if isinstance(key, (str, int, float, bool)) else None
        return super().construct_mapping(node, deep=deep)


def load_unique(text: str) -> object:
    """yaml.safe_load, but a repeated key raises DuplicateYamlKey naming both lines."""
    return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
