"""Virtual tokens (P-tuning, prompt tuning) in any layout: the peft model's prompt embeddings are put in
front of every row as columns 0..V-1 at positions 0..V-1, every real token may attend to them, and the
row's own mask (packed block mask or causal) is kept for the rest, its positions moved up by V -- what
peft's own forward does for one unpadded row, extended to the packed layout and to left-padded batches.
Generation prefills the same way and decodes with the model's own cache.
"""
from __future__ import annotations

import torch

from rrtf.tuning._method_model import MethodModel, attention_mask_for


class PrefixModel(MethodModel):
    def prompts(self, batch_size: int) -> torch.Tensor:
        return self.inner.get_prompt(batch_size=batch_size)

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.base.get_input_embeddings()(input_ids)

    def forward(self, input_ids, position_ids, allowed, keep, prompt_lengths=None):
        b, length = input_ids.shape
        embeds = self.embed(input_ids)
        prompts = self.prompts(b).to(embeds.dtype)
        v = prompts.shape[1]
        limit = getattr(self.config, "max_position_embeddings", None)
        if limit and v + length > limit:
            raise ValueError(f"{v} virtual tokens + a {length}-token row exceed the model's {limit} positions; "
                             "lower --max_length / --max_packed_length or the number of virtual tokens")
        mask = torch.zeros(b, 1, v + length, v + length, dtype=torch.bool, device=input_ids.device)
        mask[:, :, :v, :v] = torch.ones(v, v, dtype=torch.bool, device=input_ids.device).tril()
        mask[:, :, v:, :v] = True
        mask[:, :, v:, v:] = allowed
        positions = torch.cat([torch.arange(v, device=input_ids.device).expand(b, v), position_ids + v], dim=1)
        keep = torch.cat([torch.zeros(b, v, dtype=torch.bool, device=keep.device), keep], dim=1)
        return self.base(inputs_embeds=torch.cat([prompts, embeds], dim=1), attention_mask=attention_mask_for(self.base, mask),
                         position_ids=positions, logits_to_keep=keep, use_cache=False).logits

    @torch.no_grad()
    def generate(self, input_ids, attention_mask=None, **kwargs):
        """Token ids [B, prompt + new] as a transformers model's generate returns them."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        embeds = self.embed(input_ids)
        prompts = self.prompts(input_ids.shape[0]).to(embeds.dtype)
        mask = torch.cat([torch.ones(prompts.shape[:2], dtype=attention_mask.dtype, device=attention_mask.device), attention_mask], 1)
        out = self.base.generate(inputs_embeds=torch.cat([prompts, embeds], 1), attention_mask=mask, **kwargs)
        if hasattr(out, "sequences"):  # return_dict_in_generate: the same object, the prompt in front
            out.sequences = torch.cat([input_ids, out.sequences], dim=1)
            return out
        return torch.cat([input_ids, out], dim=1)


__all__ = ["PrefixModel"]
