"""PyTorch + HF transformers twin of `freezelab train`, for `cargo xtask reference`: the same
examples (written by `freezelab train --examples-out`), the same model (BertModel, mean pooling
over real tokens, dropout, a new linear head initialised N(0, 0.02) with bias 0) and the same
recipe as Hugging Face's Trainer (AdamW with no weight decay on biases and LayerNorm weights,
gradients clipped to global norm 1.0, linear warm-up over ceil(10%) of the steps then linear
decay), the encoder and the head at their own learning rates. Frozen blocks run in eval mode
without gradients. Prints one JSON object: val_accuracy, macro_f1, train_seconds.

    python3 tests/reference/train_torch.py MODEL_DIR EXAMPLES.json --freeze none|emb,0-3|head-only --seed 0
"""

import argparse
import json
import math
import random
import time

import torch
from tokenizers import Tokenizer
from transformers import BertModel, get_linear_schedule_with_warmup


def encode(tokenizer, text, max_len):
    ids = tokenizer.encode(text).ids
    # Truncated keeping the final [SEP], as FreezeLab's tokenizer wrapper does.
    return ids if len(ids) <= max_len else ids[: max_len - 1] + [ids[-1]]


def batch(rows):
    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    return ids, mask


def frozen_blocks(spec, layers):
    if spec == "none":
        return False, 0
    if spec == "head-only":
        return True, layers
    parts = spec.split(",")
    assert parts[0] == "emb" and len(parts) == 2, "only none, head-only and emb,0-K"
    return True, int(parts[1].split("-")[1]) + 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("examples")
    ap.add_argument("--freeze", default="none")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--max-len", type=int, default=64)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--head-lr", type=float, default=1e-3)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    split = json.load(open(args.examples))
    tokenizer = Tokenizer.from_file(f"{args.model_dir}/tokenizer.json")
    tokenizer.no_padding()
    tokenizer.no_truncation()
    train = [(encode(tokenizer, t, args.max_len), y) for t, y in split["train"]]
    validation = [(encode(tokenizer, t, args.max_len), y) for t, y in split["validation"]]
    labels = len(split["labels"])

    bert = BertModel.from_pretrained(args.model_dir, add_pooling_layer=False)
    head = torch.nn.Linear(bert.config.hidden_size, labels)
    torch.nn.init.normal_(head.weight, std=bert.config.initializer_range)
    torch.nn.init.zeros_(head.bias)
    dropout = torch.nn.Dropout(bert.config.hidden_dropout_prob)
    emb_frozen, line = frozen_blocks(args.freeze, bert.config.num_hidden_layers)
    frozen = ([bert.embeddings] if emb_frozen else []) + list(bert.encoder.layer[:line])
    for module in frozen:
        module.requires_grad_(False)

    named = [(n, p) for n, p in bert.named_parameters() if p.requires_grad]
    no_decay = lambda n: "bias" in n or "LayerNorm" in n  # noqa: E731 (HF's grouping)
    groups = [
        {"params": [p for n, p in named if not no_decay(n)], "lr": args.lr, "weight_decay": 0.01},
        {"params": [p for n, p in named if no_decay(n)], "lr": args.lr, "weight_decay": 0.0},
        {"params": [head.weight], "lr": args.head_lr, "weight_decay": 0.01},
        {"params": [head.bias], "lr": args.head_lr, "weight_decay": 0.0},
    ]
    optim = torch.optim.AdamW([g for g in groups if g["params"]], betas=(0.9, 0.999), eps=1e-8)
    steps = math.ceil(len(train) / args.batch) * args.epochs
    schedule = get_linear_schedule_with_warmup(optim, math.ceil(steps * 0.1), steps)
    clipped = [p for _, p in named] + list(head.parameters())

    def logits(rows, training):
        bert.train(training)
        for module in frozen:
            module.eval()
        dropout.train(training)
        ids, mask = batch(rows)
        hidden = bert(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).float()
        return head(dropout((hidden * m).sum(1) / m.sum(1).clamp(min=1.0)))

    start = time.perf_counter()
    for _ in range(args.epochs):
        order = list(range(len(train)))
        random.shuffle(order)
        for i in range(0, len(order), args.batch):
            chunk = [train[j] for j in order[i : i + args.batch]]
            loss = torch.nn.functional.cross_entropy(logits([r for r, _ in chunk], True), torch.tensor([y for _, y in chunk]))
            optim.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(clipped, 1.0)
            optim.step()
            schedule.step()
    seconds = time.perf_counter() - start

    predicted, truth = [], []
    with torch.no_grad():
        for i in range(0, len(validation), args.batch):
            chunk = validation[i : i + args.batch]
            predicted += logits([r for r, _ in chunk], False).argmax(1).tolist()
            truth += [y for _, y in chunk]
    accuracy = sum(p == t for p, t in zip(predicted, truth)) / len(truth)
    f1 = []
    for k in range(labels):
        tp = sum(p == t == k for p, t in zip(predicted, truth))
        denominator = truth.count(k) + predicted.count(k)
        f1.append(2 * tp / denominator if denominator else 0.0)
    print(json.dumps({"val_accuracy": accuracy, "macro_f1": sum(f1) / labels, "train_seconds": seconds}))


if __name__ == "__main__":
    main()
