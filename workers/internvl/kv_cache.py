"""A key/value cache allocated once per decode stream and written in place, one row per slot.

transformers' default `DynamicCache` appends each decode step with `torch.cat`,
which copies the whole cache of every layer at every step: at 48 pages of 13
tiles that is about 37 GB read and 37 GB written per token, twice the traffic
the step needs (weights + one read of the cache). Here each layer owns one
buffer of (slots, kv heads, capacity, head dim), zeroed once; nothing is copied
after it is written.

Two views of the same buffers:
- `prefill_cache(slot, filled)`: one slot's row, written by a prompt's forward
  pass after its first `filled` columns (0, or a prefix copied from another
  slot); a slot is refilled with a new prompt when its answer ends;
- `decode_cache(plan)`: every slot at once; each step writes one column per
  slot, at that slot's own length (slots hold prompts of different lengths,
  admitted at different times), and attention sees the first `plan.view_len`
  columns, the columns past each slot's length hidden by the attention mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers.cache_utils import Cache, DynamicLayer


@dataclass
class StepPlan:
    """Where the next decode step writes: row `slots[i]`, column `write_at[i]`; attention
    reads `view_len` columns."""

    slots: torch.Tensor  # arange(slots), long, on the device
    write_at: torch.Tensor  # (slots,) long, on the device
    view_len: int


class _BufferLayer(DynamicLayer):
    """A DynamicLayer whose `keys`/`values` are views of buffers it never reallocates."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, filled: int = 0):
        super().__init__()
        self._key_buffer, self._value_buffer = keys, values
        self.dtype, self.device = keys.dtype, keys.device
        self.is_initialized = True
        self._expose(filled)

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        """Allocated up front: nothing to do on first use."""

    def _expose(self, columns: int) -> None:
        self.keys = self._key_buffer[:, :, :columns]
        self.values = self._value_buffer[:, :, :columns]

    def get_max_length(self) -> int:
        return self._key_buffer.shape[-2]


class PrefillLayer(_BufferLayer):
    """One slot's row: a prompt's keys and values written after the `filled` columns already
    there (0, or a prefix copied from a slot holding a prompt that starts the same way)."""

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs
    ) -> tuple[torch.Tensor, torch.Tensor]:
        start = self.keys.shape[-2]
        end = start + key_states.shape[-2]
        if end > self._key_buffer.shape[-2]:
            raise RuntimeError(
                f"KV cache slot holds {self._key_buffer.shape[-2]} positions, not {end}"
            )
        self._key_buffer[:, :, start:end].copy_(key_states)
        self._value_buffer[:, :, start:end].copy_(value_states)
        self._expose(end)
        return self.keys, self.values


class SlotLayer(_BufferLayer):
    """Every slot: one new column per slot per step, each at its slot's own length."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, plan: StepPlan):
        super().__init__(keys, values)
        self.plan = plan

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # (slots, heads, 1, dim) -> row s, column write_at[s]
        self._key_buffer[self.plan.slots, :, self.plan.write_at] = key_states[:, :, 0]
        self._value_buffer[self.plan.slots, :, self.plan.write_at] = value_states[:, :, 0]
        self._expose(self.plan.view_len)
        return self.keys, self.values

    def get_seq_length(self) -> int:
        """Columns before this step's (the mask is built for view_len = this + 1)."""
        return self.plan.view_len - 1


class KVBuffers:
    """The buffers of one stream: per layer, zeroed keys and values of (slots, kv heads, capacity, head dim).

    Zeroed because columns hidden by the mask are still multiplied by a zero
    weight, and uninitialised memory can hold NaN.
    """

    def __init__(self, text_config, slots: int, capacity: int, dtype: torch.dtype, device):
        shape = (slots, text_config.num_key_value_heads, capacity, head_dim(text_config))
        self.layers = [
            (
                torch.zeros(shape, dtype=dtype, device=device),
                torch.zeros(shape, dtype=dtype, device=device),
            )
            for _ in range(text_config.num_hidden_layers)
        ]

    def prefill_cache(self, slot: int, filled: int = 0) -> Cache:
        """A transformers Cache over one slot's row; the next forward writes after column `filled`."""
        rows = slice(slot, slot + 1)
        return Cache(layers=[PrefillLayer(k[rows], v[rows], filled) for k, v in self.layers])

    def copy_prefix(self, source: int, target: int, columns: int) -> None:
        """The first `columns` keys and values of slot `source`, into slot `target`."""
        for keys, values in self.layers:
            keys[target, :, :columns] = keys[source, :, :columns]
            values[target, :, :columns] = values[source, :, :columns]

    def decode_cache(self, plan: StepPlan) -> Cache:
        return Cache(layers=[SlotLayer(k, v, plan) for k, v in self.layers])

    @staticmethod
    def bytes_needed(text_config, slots: int, capacity: int, dtype: torch.dtype) -> int:
        per_position = 2 * text_config.num_key_value_heads * head_dim(text_config) * dtype.itemsize
        return per_position * slots * capacity * text_config.num_hidden_layers


def head_dim(text_config) -> int:
    return getattr(text_config, "head_dim", None) or (
        text_config.hidden_size // text_config.num_attention_heads
    )
