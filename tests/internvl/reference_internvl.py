"""An independent float64 forward pass of InternVL 1.5, written from INTERNVL.md.

It reads the ORIGINAL checkpoint (packed `qkv`/`wqkv`, `mlp1`, InternLM2 names,
`ps_version`) and shares no code with workers/internvl, so agreement with the
converted model run by the engine tests the converter and the engine, not
themselves. Pixel shuffle follows the checkpoint's `ps_version` (absent: v1, the
V1-5 config class default); `transpose_grid=True` applies the other version, for
tests that show a transposed grid is caught. reference_pipeline.py adds tiling,
the prompt, tokenisation and greedy decoding around it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file


class Reference:
    def __init__(self, src: Path, transpose_grid: bool = False):
        self.cfg = json.loads((src / "config.json").read_text())
        self.w: dict[str, torch.Tensor] = {}
        for file in sorted(src.glob("*.safetensors")):
            self.w |= {k: v.double() for k, v in load_file(str(file)).items()}
        self.v, self.t = self.cfg["vision_config"], self.cfg["llm_config"]
        version = self.cfg.get("ps_version", "v1")
        self.ps_version = {"v1": "v2", "v2": "v1"}[version] if transpose_grid else version

    # ---- shared pieces -------------------------------------------------
    @staticmethod
    def rms(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
        return weight * x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps)

    @staticmethod
    def softmax_attention(q, k, v, causal: bool) -> torch.Tensor:
        """q: (heads, nq, d); k, v: (heads, nk, d)."""
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        if causal:  # the queries are the last positions of the keys
            nq, nk = scores.shape[-2:]
            future = torch.ones(nq, nk, dtype=torch.bool).triu(1 + nk - nq)
            scores = scores.masked_fill(future, float("-inf"))
        return scores.softmax(-1) @ v

    # ---- vision: InternViT with QK-norm and layer scale ------------------
    def vision(self, pixels: torch.Tensor) -> torch.Tensor:
        """(tiles, 3, 448, 448) -> (tiles, 1025, C), CLS first."""
        w, p = self.w, "vision_model."
        x = F.conv2d(
            pixels.double(),
            w[p + "embeddings.patch_embedding.weight"],
            w[p + "embeddings.patch_embedding.bias"],
            stride=self.v["patch_size"],
        )
        x = x.flatten(2).transpose(1, 2)
        cls = w[p + "embeddings.class_embedding"].expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], 1) + w[p + "embeddings.position_embedding"]
        for i in range(self.v["num_hidden_layers"]):
            x = self.vision_layer(x, f"{p}encoder.layers.{i}.")
        return x

    def vision_layer(self, x: torch.Tensor, p: str) -> torch.Tensor:
        w, eps = self.w, self.v["layer_norm_eps"]
        x = x + w[p + "ls1"] * torch.stack(
            [self.vision_attention(t, p) for t in self.rms(x, w[p + "norm1.weight"], eps)]
        )
        h = self.rms(x, w[p + "norm2.weight"], eps)
        h = (
            F.gelu(h @ w[p + "mlp.fc1.weight"].T + w[p + "mlp.fc1.bias"])
            @ w[p + "mlp.fc2.weight"].T
            + w[p + "mlp.fc2.bias"]
        )
        return x + w[p + "ls2"] * h

    def vision_attention(self, x: torch.Tensor, p: str) -> torch.Tensor:
        """x: (n, C). qkv rows are [q; k; v]; QK-norm is an RMSNorm over the full width."""
        w, heads, eps = self.w, self.v["num_attention_heads"], self.v["layer_norm_eps"]
        c = x.shape[-1]
        qkv = x @ w[p + "attn.qkv.weight"].T
        q, k, v = qkv[:, :c], qkv[:, c : 2 * c], qkv[:, 2 * c :]
        q, k = (
            self.rms(q, w[p + "attn.q_norm.weight"], eps),
            self.rms(k, w[p + "attn.k_norm.weight"], eps),
        )
        q, k, v = (t.reshape(-1, heads, c // heads).transpose(0, 1) for t in (q, k, v))
        out = self.softmax_attention(q, k, v, causal=False)
        return (
            out.transpose(0, 1).reshape(-1, c) @ w[p + "attn.proj.weight"].T
            + w[p + "attn.proj.bias"]
        )

    # ---- pixel shuffle (v1 / v2) + mlp1 ------------------------------------
    @staticmethod
    def pixel_shuffle(x: torch.Tensor, scale: float, version: str) -> torch.Tensor:
        """(n, w, h, c) -> (n, w*s, h*s, c/s^2). Both versions fold each 2x2 neighbourhood
        into one token's channels; v2 then swaps the two spatial axes back, v1 does not."""
        n, w, h, c = x.shape
        x = x.reshape(n, w, int(h * scale), int(c / scale)).permute(0, 2, 1, 3)
        x = x.reshape(n, int(h * scale), int(w * scale), int(c / (scale * scale)))
        return x.permute(0, 2, 1, 3) if version == "v2" else x

    def image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """(tiles, 3, 448, 448) -> (tiles * 256, llm hidden)."""
        x = self.vision(pixels)[:, 1:]
        side = int(math.sqrt(x.shape[1]))
        x = self.pixel_shuffle(
            x.reshape(x.shape[0], side, side, -1), self.cfg["downsample_ratio"], self.ps_version
        )
        x = x.reshape(-1, x.shape[-1])
        w = self.w
        x = F.layer_norm(x, (x.shape[-1],), w["mlp1.0.weight"], w["mlp1.0.bias"], eps=1e-5)
        x = F.gelu(x @ w["mlp1.1.weight"].T + w["mlp1.1.bias"])
        return x @ w["mlp1.3.weight"].T + w["mlp1.3.bias"]

    # ---- InternLM2 --------------------------------------------------------
    def rope(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotate-half rope; dynamic NTK raises the base once the sequence exceeds max positions."""
        d = self.t["hidden_size"] // self.t["num_attention_heads"]
        base, max_pos = self.t["rope_theta"], self.t["max_position_embeddings"]
        factor = self.t["rope_scaling"]["factor"]
        if n > max_pos:
            base = base * ((factor * n / max_pos) - (factor - 1)) ** (d / (d - 2))
        inv = 1.0 / base ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
        angles = torch.outer(torch.arange(n, dtype=torch.float64), inv)
        angles = torch.cat([angles, angles], -1)
        return angles.cos(), angles.sin()

    @staticmethod
    def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], -1)
        return x * cos + rotated * sin

    def llm_attention(self, x: torch.Tensor, p: str, cos, sin, cache: list) -> torch.Tensor:
        """wqkv rows: per KV head, its `groups` query heads, then its key, then its value.
        `cache`: this layer's [keys, values] of the earlier positions (extended here)."""
        heads, kv = self.t["num_attention_heads"], self.t["num_key_value_heads"]
        d, groups, n = x.shape[-1] // heads, heads // kv, x.shape[0]
        qkv = (x @ self.w[p + "attention.wqkv.weight"].T).reshape(n, kv, groups + 2, d)
        q = qkv[:, :, :groups].reshape(n, heads, d).transpose(0, 1)
        k = qkv[:, :, groups].transpose(0, 1)
        v = qkv[:, :, groups + 1].transpose(0, 1)
        q, k = self.rotate(q, cos, sin), self.rotate(k, cos, sin)
        if cache:
            k, v = torch.cat([cache[0], k], 1), torch.cat([cache[1], v], 1)
        cache[:] = [k, v]
        k, v = k.repeat_interleave(groups, 0), v.repeat_interleave(groups, 0)
        out = self.softmax_attention(q, k, v, causal=True).transpose(0, 1).reshape(n, -1)
        return out @ self.w[p + "attention.wo.weight"].T

    def llm_layer(self, x: torch.Tensor, p: str, cos, sin, cache: list) -> torch.Tensor:
        w, eps = self.w, self.t["rms_norm_eps"]
        h = self.rms(x, w[p + "attention_norm.weight"], eps)
        x = x + self.llm_attention(h, p, cos, sin, cache)
        h = self.rms(x, w[p + "ffn_norm.weight"], eps)
        gate, up = h @ w[p + "feed_forward.w1.weight"].T, h @ w[p + "feed_forward.w3.weight"].T
        return x + (F.silu(gate) * up) @ w[p + "feed_forward.w2.weight"].T

    def forward(self, x: torch.Tensor, caches: list[list], last: int | None = None) -> torch.Tensor:
        """Logits for embeddings `x` (n, hidden) that follow the positions in `caches` (one
        [keys, values] per layer, empty at the start, extended here)."""
        start = caches[0][0].shape[1] if caches[0] else 0
        cos, sin = self.rope(start + x.shape[0])
        cos, sin = cos[start:], sin[start:]
        for i, cache in enumerate(caches):
            x = self.llm_layer(x, f"language_model.model.layers.{i}.", cos, sin, cache)
        x = self.rms(
            x[-last:] if last else x,
            self.w["language_model.model.norm.weight"],
            self.t["rms_norm_eps"],
        )
        return x @ self.w["language_model.output.weight"].T

    def embed(self, ids: list[int], features: torch.Tensor | None, image_token_id: int):
        """Token embeddings (n, hidden); `features` (from image_features) fill the IMG_CONTEXT
        slots."""
        ids_t = torch.tensor(ids)
        x = self.w["language_model.model.tok_embeddings.weight"][ids_t].clone()
        if features is not None:
            x[ids_t == image_token_id] = features
        return x

    def logits(
        self,
        ids: list[int],
        features: torch.Tensor | None,
        image_token_id: int,
        last: int | None = None,
    ) -> torch.Tensor:
        """Logits (n, vocab) for one unpadded sequence (only the `last` positions if given)."""
        caches: list[list] = [[] for _ in range(self.t["num_hidden_layers"])]
        return self.forward(self.embed(ids, features, image_token_id), caches, last)

    def greedy(
        self, ids: list[int], features: torch.Tensor, image_token_id: int, stop_id: int, n: int
    ) -> tuple[list[int], float]:
        """Up to `n` greedy tokens, the stop token excluded; and the smallest gap between the
        best and second-best logit (far above float32 noise: the tokens are no coin toss).
        Keys and values are kept between steps; the rope of each new position uses the
        base for the length so far (dynamic NTK as the original computes it with a cache)."""
        caches: list[list] = [[] for _ in range(self.t["num_hidden_layers"])]
        logits = self.forward(self.embed(ids, features, image_token_id), caches, last=1)[-1]
        out: list[int] = []
        gap = math.inf
        while True:
            top = logits.topk(2).values
            gap = min(gap, float(top[0] - top[1]))
            token = int(logits.argmax())
            if token == stop_id:
                break
            out.append(token)
            if len(out) == n:
                break
            logits = self.forward(self.embed([token], None, image_token_id), caches)[-1]
        return out, gap
