"""The sandbox bank: a synthetic county bank in the contract's format, with its ground truth.

``generate(config, out_dir)`` writes the extracts, the truth and a manifest; ``World`` answers
how the sandbox's customers behave when the bank acts on them. See ``docs/sandbox.md``.
"""

from creditfactory.sandbox.config import GENERATOR_VERSION, SandboxConfig, SandboxError
from creditfactory.sandbox.generator import FileEntry, GenerateResult, generate
from creditfactory.sandbox.world import NOT_PAID, CustomerWorld, UnknownCustomer, World

__all__ = [
    "GENERATOR_VERSION",
    "NOT_PAID",
    "CustomerWorld",
    "FileEntry",
    "GenerateResult",
    "SandboxConfig",
    "SandboxError",
    "UnknownCustomer",
    "World",
    "generate",
]
