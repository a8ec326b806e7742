"""peft's AdaLoRA rank allocator with its per-step work on flat buffers: the same numbers in a few ops instead of
a dozen per adapter parameter.

peft's ``RankAllocator`` updates each adapter parameter's sensitivity averages in its own dozen ops, builds every
module's importance score from per-module pieces and, after pruning ends, rebuilds each module's mask from a Python
list on every step: on a small model those tiny ops, not the arithmetic, are the allocator's cost, and at large
ranks each update allocates and page-faults fresh parameter-sized temporaries. Here:

* the sensitivity update runs once over all adapter parameters concatenated, in place in persistent buffers;
  peft's dictionaries hold views into them, so checkpoints and peft's own code read the same tensors;
* the pruning threshold and masks come from one score vector (the per-module means stay per module, as peft's);
* the final rank pattern's masks are built once, not every step.

Every operation is peft's elementwise operation in peft's order (products, sums and abs round identically however
many elements one call covers; no fused multiply-add), so the averages, thresholds, masks and the training they
steer are bitwise peft's: ``tests/test_adalora_allocator.py`` holds them equal step by step, across pruning, the final
mask and a resume. A model's allocator becomes this class in ``methods/fast/peft.py``."""

from __future__ import annotations

import itertools

import torch
from peft.tuners.adalora.layer import RankAllocator, deepspeed_config


class FlatRankAllocator(RankAllocator):
    _params_of: tuple | None = None           # (model, [(name, param), ...]) of the adapter's lora_ parameters
    _flat: tuple | None = None                # (flat buffers, the views of the first three that peft's dicts hold)
    _final_masks: tuple | None = None         # (rank pattern, [(lora_E, keep-mask), ...]) after pruning ends

    def _lora_params(self, model) -> list[tuple[str, torch.nn.Parameter]]:
        """peft's selection ("lora_" and the adapter's name in the parameter's name), in named_parameters order."""
        if self._params_of is None or self._params_of[0] is not model:
            self._params_of = (model, [(n, p) for n, p in model.named_parameters()
                                       if "lora_" in n and self.adapter_name in n])
        return self._params_of[1]

    def _views(self, flat: torch.Tensor, params) -> list[torch.Tensor]:
        """flat's consecutive pieces, each shaped as its parameter."""
        pieces = flat.split([p.numel() for _, p in params])
        return [piece.view_as(p) for piece, (_, p) in zip(pieces, params)]

    def _flat_state(self, params) -> tuple[torch.Tensor, ...]:
        """(ipt, exp_avg_ipt, exp_avg_unc, scratch, scratch) as flat buffers, (re)built where peft's dicts no longer
        hold their views (the first step, after peft's reset, after a resume loaded other tensors)."""
        names = [n for n, _ in params]
        dicts = (self.ipt, self.exp_avg_ipt, self.exp_avg_unc)
        if self._flat is not None:
            buffers, views = self._flat
            if all(d.get(n) is v for d, vs in zip(dicts, views) for n, v in zip(names, vs)):
                return buffers
        state = [torch.cat([(d[n] if n in d else torch.zeros_like(p)).reshape(-1).to(p) for n, p in params])
                 for d in dicts]
        scratch = [torch.empty_like(state[0]) for _ in range(2)]
        views = [self._views(flat, params) for flat in state]
        for d, vs in zip(dicts, views):
            d.update(zip(names, vs))
        self._flat = ((*state, *scratch), views)
        return self._flat[0]

    def reset_ipt(self):
        super().reset_ipt()
        self._flat = None

    @torch.no_grad()
    def update_ipt(self, model):
        if deepspeed_config() is not None:  # gradients live in DeepSpeed's partitions: peft's own path
            self._flat = None
            return super().update_ipt(model)
        params = self._lora_params(model)
        ipt, avg, unc, values, grads = self._flat_state(params)
        torch.cat([p.detach().reshape(-1) for _, p in params], out=values)
        torch.cat([p.grad.reshape(-1) for _, p in params], out=grads)
        # peft, per parameter: ipt = |p·g|; avg = β1·avg + (1−β1)·ipt; unc = β2·unc + (1−β2)·|ipt − avg| (new avg).
        # In place, each product and sum rounded on its own as there (no fused multiply-add).
        torch.mul(values, grads, out=ipt).abs_()
        scaled = torch.mul(ipt, 1 - self.beta1, out=values)
        avg.mul_(self.beta1).add_(scaled)
        spread = torch.sub(ipt, avg, out=grads).abs_().mul_(1 - self.beta2)
        unc.mul_(self.beta2).add_(spread)

    @torch.no_grad()
    def mask_to_budget(self, model, budget):
        params = self._lora_params(model)
        names = [n for n, _ in params]
        if deepspeed_config() is not None or any(n not in self.exp_avg_ipt for n in names):
            return super().mask_to_budget(model, budget)
        _, avg, unc, _, _ = self._flat_state(params)
        score = dict(zip(names, self._views(avg * unc, params)))  # peft's _element_score, all at once
        a, b, e = (f"lora_{x}.{self.adapter_name}" for x in "ABE")
        rows: dict[str, list] = {}  # module pattern -> [A's row means, B's column means] (peft's vector_ipt)
        values: dict[str, torch.Tensor] = {}
        for n in names:
            if a in n:
                rows.setdefault(n.replace("lora_A", "%s"), []).append(score[n].mean(dim=1, keepdim=True))
            if b in n:
                rows.setdefault(n.replace("lora_B", "%s"), []).append(score[n].mean(dim=0).view(-1, 1))
            if e in n:
                values[n.replace("lora_E", "%s")] = score[n]
        modules = list(rows)
        sizes = [values[m].numel() for m in modules]
        # peft per module: E's score + the sum of the A and B means (two numbers: one rounding either way)
        pieces = [torch.cat(rows[m], dim=1) for m in modules]
        combined = torch.cat([values[m].view(-1) for m in modules]) + torch.cat(pieces).sum(dim=1)
        threshold = torch.kthvalue(combined, k=self.init_bgt - budget)[0].item()
        pruned = combined <= threshold
        kept = (~pruned).tolist()  # one host copy; each module's list is a slice of it
        ends = list(itertools.accumulate(sizes))
        by_module = {m % "lora_E": (mask.view(-1, 1), kept[end - size: end])
                     for m, mask, size, end in zip(modules, pruned.split(sizes), sizes, ends)}
        rank_pattern = {}
        for n, p in params:
            if e in n:
                mask, keep = by_module[n]
                p.masked_fill_(mask, 0.0)
                rank_pattern[n] = keep
        return rank_pattern

    @torch.no_grad()
    def mask_using_rank_pattern(self, model, rank_pattern):
        """After pruning the pattern is fixed: its masks are built once, then each step is a masked fill per module."""
        if self._final_masks is None or self._final_masks[0] is not rank_pattern:
            truncated = self.adapter_name not in next(iter(rank_pattern.keys()))
            masks = []
            for n, p in self._lora_params(model):
                if f"lora_E.{self.adapter_name}" in n:
                    key = n if not truncated else n.replace(f".{self.adapter_name}", "")
                    keep = torch.tensor(rank_pattern[key], dtype=torch.bool, device=p.device).unsqueeze(-1)
                    masks.append((p, ~keep))
            self._final_masks = (rank_pattern, masks)
        for p, pruned in self._final_masks[1]:
            p.masked_fill_(pruned, 0.0)
