"""PyTorch + HF transformers reference for `freezelab bench`: the same training step (mean
pool → dropout → linear head, cross-entropy, gradients clipped to global norm 1.0, AdamW with no
weight decay on biases and LayerNorm weights, the encoder at 5e-5 and the head at 1e-3),
the same fixed batches (rows of exactly `seq` tokens), the same freeze configurations.

    python3 tests/reference/bench_torch.py static/models/minilm-l6 --batch 16 --seq 64,128 --steps 3

Prints one JSON object per configuration with the fields `freezelab bench --json` writes.
"cache" runs the frozen prefix once beforehand and trains from its output, as FreezeLab does.
"""

import argparse
import json
import time

import torch
from transformers import BertModel


def fixed_batch(batch, seq, vocab):
    rows = []
    for r in range(batch):
        row = [101] + [1000 + (r * 7919 + i * 104729) % (vocab - 1000) for i in range(1, seq - 1)] + [102]
        rows.append(row)
    return torch.tensor(rows), torch.ones(batch, seq, dtype=torch.long)


def run(model_dir, batch, seq, steps, frozen_layers, cache):
    torch.manual_seed(0)
    bert = BertModel.from_pretrained(model_dir, add_pooling_layer=False)
    head = torch.nn.Linear(bert.config.hidden_size, 2)
    dropout = torch.nn.Dropout(0.1)
    n = bert.config.num_hidden_layers
    head_only = frozen_layers == n
    if frozen_layers is not None:
        for p in bert.embeddings.parameters():
            p.requires_grad_(False)
        for layer in bert.encoder.layer[:frozen_layers]:
            for p in layer.parameters():
                p.requires_grad_(False)
    bert.train()
    trainable = [(n, p) for n, p in bert.named_parameters() if p.requires_grad]
    no_decay = lambda n: "bias" in n or "LayerNorm" in n  # noqa: E731 (HF's grouping)
    groups = [
        {"params": [head.weight], "lr": 1e-3, "weight_decay": 0.01},
        {"params": [head.bias], "lr": 1e-3, "weight_decay": 0.0},
        {"params": [p for n, p in trainable if not no_decay(n)], "lr": 5e-5, "weight_decay": 0.01},
        {"params": [p for n, p in trainable if no_decay(n)], "lr": 5e-5, "weight_decay": 0.0},
    ]
    optim = torch.optim.AdamW([g for g in groups if g["params"]], eps=1e-8)
    clipped = [p for _, p in trainable] + list(head.parameters())
    ids, mask = fixed_batch(batch, seq, bert.config.vocab_size)
    labels = torch.arange(batch) % 2
    # Additive attention bias, as BertModel builds it: 0 for tokens, a very negative number for padding.
    ext = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    line = 0 if frozen_layers is None else frozen_layers

    def prefix():
        # The frozen prefix runs in eval mode without autograd, as FreezeLab runs it.
        with torch.no_grad():
            bert.embeddings.eval()
            x = bert.embeddings(input_ids=ids)
            for layer in bert.encoder.layer[:line]:
                layer.eval()
                out = layer(x, attention_mask=ext)
                x = out[0] if isinstance(out, tuple) else out
        return x

    cached = prefix() if cache else None
    elapsed = 0.0
    for step in range(steps + 1):
        t0 = time.perf_counter()
        if frozen_layers is None:
            hidden = bert(input_ids=ids, attention_mask=mask).last_hidden_state
        else:
            x = cached if cache else prefix()
            for layer in bert.encoder.layer[line:]:
                out = layer(x, attention_mask=ext)
                x = out[0] if isinstance(out, tuple) else out
            hidden = x
        m = mask.unsqueeze(-1).float()
        pooled = (hidden * m).sum(1) / m.sum(1)
        loss = torch.nn.functional.cross_entropy(head(dropout(pooled)), labels)
        optim.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(clipped, 1.0)
        optim.step()
        if step > 0:
            elapsed += time.perf_counter() - t0
    per_step = elapsed / steps
    label = "none" if frozen_layers is None else ("head-only" if head_only else f"emb,0-{frozen_layers - 1}")
    return {
        "freeze": label,
        "cache": cache,
        "batch_size": batch,
        "seq_len": seq,
        "steps": steps,
        "seconds_per_step": per_step,
        "examples_per_second": batch / per_step,
        "torch_threads": torch.get_num_threads(),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", default="64,128")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (the bench sets Burn's alike)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    n = BertModel.from_pretrained(args.model_dir, add_pooling_layer=False).config.num_hidden_layers
    for seq in [int(s) for s in args.seq.split(",")]:
        for frozen, cache in [(None, False), (3, False), (3, True), (n, False), (n, True)]:
            print(json.dumps(run(args.model_dir, args.batch, seq, args.steps, frozen, cache)), flush=True)


if __name__ == "__main__":
    main()
