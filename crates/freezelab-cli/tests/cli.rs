//! The `freezelab` binary end to end on the default assets (prepared by `cargo xtask assets`).

use std::path::PathBuf;
use std::process::Command;

/// The checkout `cargo test` runs in (not the path compiled in: checkouts sharing one target
/// folder may run each other's test binaries).
fn root() -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo test")).join("../..")
}

fn model_dir(test: &str) -> Option<PathBuf> {
    let dir = root().join("static/models/minilm-l6");
    if dir.join("model.safetensors").exists() {
        return Some(dir);
    }
    if std::env::var_os("FREEZELAB_REQUIRE_ASSETS").is_some() {
        panic!("{test}: default assets missing: run `cargo xtask assets`");
    }
    // Counted as skipped by `cargo xtask test` (see freezelab-core's tests/common).
    eprintln!("SKIPPED {test}: default assets missing (run `cargo xtask assets`)");
    if let Some(log) = std::env::var_os("FREEZELAB_SKIP_LOG") {
        let line = format!("{test}: default assets missing\n");
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()))
            .expect("skip log");
    }
    None
}

/// A fresh scratch folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("freezelab-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn freezelab(args: &[&str]) -> (String, String, bool) {
    let out = Command::new(env!("CARGO_BIN_EXE_freezelab")).args(args).current_dir(root()).output().unwrap();
    (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap(), out.status.success())
}

#[test]
fn embed_prints_the_contract() {
    let Some(dir) = model_dir("embed") else {
        return;
    };
    let input = std::env::temp_dir().join("freezelab-embed-input.txt");
    std::fs::write(&input, "The movie was great!\nSecond line\n").unwrap();
    let (stdout, stderr, ok) =
        freezelab(&["embed", "--model", dir.to_str().unwrap(), "--input", input.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let lines = json_lines(&stdout);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["text"], "The movie was great!");
    assert_eq!(lines[0]["ids"], serde_json::json!([101, 1996, 3185, 2001, 2307, 999, 102]));
    assert_eq!(lines[0]["mean"].as_array().unwrap().len(), 384);
    assert_eq!(lines[0]["cls"].as_array().unwrap().len(), 384);
    assert_ne!(lines[0]["mean"], lines[1]["mean"]);
}

#[test]
fn info_counts_parameters_per_block() {
    let Some(dir) = model_dir("info") else { return };
    let (stdout, stderr, ok) = freezelab(&["info", "--model", dir.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("6 layers, hidden 384"), "{stdout}");
    assert!(stdout.contains("1774464"), "{stdout}");
    assert!(stdout.contains("11918592"), "embeddings: {stdout}");
}

/// A LoRA run above a frozen prefix saves a plain Hugging Face folder that `predict` loads.
#[test]
fn train_saves_a_model_that_predict_loads() {
    let Some(dir) = model_dir("train → predict") else {
        return;
    };
    let tmp = scratch("cli");
    let (out, head, folder) = (tmp.join("run.json"), tmp.join("tuned.safetensors"), tmp.join("tuned"));
    let (stdout, stderr, ok) = freezelab(&[
        "train",
        "--model",
        dir.to_str().unwrap(),
        "--data",
        "spam",
        "--freeze",
        "lora-8:emb,0-3",
        "--train-size",
        "32",
        "--eval-size",
        "32",
        "--epochs",
        "1",
        "--max-len",
        "32",
        "--batch",
        "8",
        "--out",
        out.to_str().unwrap(),
        "--save-head",
        head.to_str().unwrap(),
        "--save-model",
        folder.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let events = json_lines(&stdout);
    assert!(events.first().unwrap()["started"]["total_steps"].is_number(), "{:?}", events.first());
    assert_eq!(events.iter().filter(|e| e["step"]["loss"].is_number()).count(), 4);
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    for key in ["val_accuracy", "macro_f1", "trainable_params", "wall_seconds", "examples_per_second"] {
        assert!(summary[key].is_number(), "{key} missing in {summary}");
    }
    assert!(summary["memory"]["computed"]["weights"].is_number());
    assert!(summary["memory"]["measured_peak_bytes"].as_u64().unwrap() > 90_000_000);
    // LoRA rank 8 on query and value of layers 4 and 5: 2 × 8 × (384 + 384) each, and the head.
    assert_eq!(summary["trainable_params"], 2 * 2 * 8 * 768 + 384 * 2 + 2);

    let predict = |extra: &[&str]| {
        let text = ["--text", "Win a FREE cruise now, click here", "--max-len", "32"];
        let (stdout, stderr, ok) = freezelab(&[&["predict"], extra, &text[..]].concat());
        assert!(ok, "{stderr}");
        serde_json::from_str::<serde_json::Value>(stdout.lines().next().unwrap()).unwrap()
    };
    let p = predict(&["--model", dir.to_str().unwrap(), "--head", head.to_str().unwrap()]);
    // The HF folder holds the same model, LoRA's updates merged into plain weights: same
    // probabilities, labels in its config.
    assert_eq!(predict(&["--model", folder.to_str().unwrap()]), p);
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["id2label"]["1"], "spam");
    let probs = p["probabilities"].as_object().unwrap();
    assert_eq!(probs.keys().collect::<Vec<_>>(), ["ham", "spam"]);
    let total: f64 = probs.values().map(|v| v.as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-4);
}

#[test]
fn bad_input_gets_a_clear_message() {
    let Some(dir) = model_dir("bad input") else {
        return;
    };
    let tmp = scratch("bad");
    let one_class = tmp.join("one.csv");
    std::fs::write(&one_class, "text,label\na,x\nb,x\nc,x\n").unwrap();
    let (_, stderr, ok) =
        freezelab(&["train", "--model", dir.to_str().unwrap(), "--data", one_class.to_str().unwrap()]);
    assert!(!ok && stderr.contains("only one class"), "{stderr}");
    let (_, stderr, ok) = freezelab(&["train", "--model", dir.to_str().unwrap(), "--data", "spam", "--freeze", "9"]);
    assert!(!ok && stderr.contains("layer 9 does not exist"), "{stderr}");
    let (_, stderr, ok) = freezelab(&["info", "--model", tmp.to_str().unwrap()]);
    assert!(!ok && stderr.contains("config.json"), "{stderr}");
    // Settings out of range are refused by name, before the model loads.
    for (flag, value, setting) in [
        ("--eval-every", "0", "eval_every"),
        ("--train-size", "0", "train_size"),
        ("--epochs", "0", "epochs"),
        ("--batch", "0", "batch_size"),
        ("--max-len", "1", "max_len"),
        ("--lr", "0", "lr"),
        ("--head-lr", "-1", "head_lr"),
        ("--weight-decay", "1.5", "weight_decay"),
        ("--beta1", "1", "beta1"),
        ("--beta2", "2", "beta2"),
        ("--warmup", "1.5", "warmup_fraction"),
        ("--max-grad-norm", "-1", "max_grad_norm"),
        ("--steps", "0", "max_steps"),
        ("--time-budget", "0", "time_budget"),
    ] {
        let args = ["train", "--model", dir.to_str().unwrap(), "--data", "spam", &format!("{flag}={value}")];
        let (_, stderr, ok) = freezelab(&args);
        assert!(!ok && stderr.contains(&format!("setting {setting}: must be")), "{flag}={value}: {stderr}");
    }
    // A model that cannot take the length: the model's own limit, named.
    let args = ["train", "--model", dir.to_str().unwrap(), "--data", "spam", "--max-len", "1000", "--steps", "1"];
    let (_, stderr, ok) = freezelab(&args);
    assert!(!ok && stderr.contains("setting max_len: must be at most the model's 512 positions"), "{stderr}");
}

/// A model folder whose config.json is out of range (dropout 1.0, heads not dividing the
/// width) is refused with the field, its value and its range: an error, never a panic.
#[test]
fn a_bad_model_config_is_named_not_a_panic() {
    let model = scratch("bad-config").join("model");
    let (_, stderr, ok) = freezelab(&["synthetic", "--out", model.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let good = std::fs::read(model.join("config.json")).unwrap();
    let data = model.join("data.csv");
    let spoiled = [
        ("hidden_dropout_prob", serde_json::json!(1.0), "hidden_dropout_prob is 1; it must be in [0, 1)"),
        ("attention_probs_dropout_prob", serde_json::json!(-0.5), "attention_probs_dropout_prob is -0.5"),
        ("num_attention_heads", serde_json::json!(5), "is not divisible by num_attention_heads 5"),
        ("layer_norm_eps", serde_json::json!(0), "layer_norm_eps is 0; it must be in (0, 1)"),
    ];
    for (field, value, message) in spoiled {
        let mut config: serde_json::Value = serde_json::from_slice(&good).unwrap();
        config[field] = value;
        std::fs::write(model.join("config.json"), serde_json::to_vec(&config).unwrap()).unwrap();
        let (_, stderr, ok) =
            freezelab(&["train", "--model", model.to_str().unwrap(), "--data", data.to_str().unwrap(), "--steps", "1"]);
        assert!(!ok && stderr.contains(message) && !stderr.contains("panicked"), "{field}: {stderr}");
    }
}

/// The sweep's table (with the modes) marks the Pareto fronts as the page's sweep does: never a
/// run below the majority class, and on each axis no front run beaten by a cheaper or equal one.
#[test]
fn sweep_with_modes_marks_the_pareto_fronts() {
    let tmp = scratch("sweep");
    let (model, out) = (tmp.join("model"), tmp.join("sweep"));
    let (_, stderr, ok) = freezelab(&["synthetic", "--out", model.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let data = model.join("data.csv");
    let args = ["--train-size", "48", "--eval-size", "24", "--epochs", "3", "--max-len", "16", "--lr", "3e-3"];
    let (_, stderr, ok) = freezelab(
        &[
            &["sweep", "--model", model.to_str().unwrap(), "--data", data.to_str().unwrap()][..],
            &args,
            &["--modes", "--out-dir", out.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(ok, "{stderr}");
    let mut csv = csv::Reader::from_path(out.join("sweep.csv")).unwrap();
    let rows: Vec<std::collections::HashMap<String, String>> = csv.deserialize().map(Result::unwrap).collect();
    let number = |r: &std::collections::HashMap<String, String>, k: &str| r[k].parse::<f64>().unwrap();
    let plans: Vec<(&str, &str)> = rows.iter().map(|r| (r["freeze"].as_str(), r["mode"].as_str())).collect();
    assert_eq!(plans[..2], [("none", "freeze"), ("emb", "freeze")]);
    assert_eq!(plans[plans.len() - 3..], [("bitfit", "bitfit"), ("lora-8", "lora"), ("llrd-0.9", "llrd")]);
    let (all, bitfit, lora) = (&rows[0], &rows[rows.len() - 3], &rows[rows.len() - 2]);
    assert!(number(bitfit, "trainable_params") < number(all, "trainable_params") / 10.0);
    assert!(number(lora, "trainable_params") < number(all, "trainable_params") / 2.0);
    assert_eq!(number(&rows[rows.len() - 1], "trainable_params"), number(all, "trainable_params"));
    let axes =
        [("front_params", "trainable_params"), ("front_memory", "measured_peak_bytes"), ("front_time", "wall_seconds")];
    for (front, cost) in axes {
        let on: Vec<_> = rows.iter().filter(|r| r[front] == "true").collect();
        assert!(on.iter().all(|r| r["beats_baseline"] == "true"), "{front}: a run below the baseline is on it");
        for r in &on {
            let dominated = rows.iter().filter(|q| q["beats_baseline"] == "true").any(|q| {
                let (qc, qa, rc, ra) =
                    (number(q, cost), number(q, "val_accuracy"), number(r, cost), number(r, "val_accuracy"));
                qc <= rc && qa >= ra && (qc < rc || qa > ra)
            });
            assert!(!dominated, "{front}: {} is dominated", r["freeze"]);
        }
        let above: Vec<_> = rows.iter().filter(|r| r["beats_baseline"] == "true").collect();
        // The front is checked on runs that beat the baseline: there must be some, and a front.
        assert!(!above.is_empty() && !on.is_empty(), "{front}: no run beats the majority class");
        let top = above.iter().map(|r| number(r, "val_accuracy")).fold(f64::NEG_INFINITY, f64::max);
        let tops: Vec<_> = above.iter().filter(|r| number(r, "val_accuracy") == top).collect();
        assert!(tops.is_empty() || tops.iter().any(|r| r[front] == "true"), "{front}: no most accurate run on it");
    }
    // The page's three plots: every plan labelled beside its point, the baseline across.
    for axis in ["params", "memory", "time"] {
        let svg = std::fs::read_to_string(out.join(format!("sweep-{axis}.svg"))).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("majority class: always"), "{axis}: {svg}");
        assert!(rows.iter().all(|r| svg.contains(&format!(">\n{}\n<", r["freeze"]))), "{axis}: {svg}");
    }
    // A list of plans, one of them unknown: refused before any training, naming it.
    let (_, stderr, ok) = freezelab(&[
        "sweep",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--plans",
        "none;lorax:emb",
        "--out-dir",
        out.to_str().unwrap(),
    ]);
    assert!(!ok && stderr.contains("\"lorax\" is not a mode"), "{stderr}");
}

/// `freezelab probe` on `model` and `data` with [train size, eval size, max length], its table
/// written to `out`.
fn probe(
    model: &std::path::Path,
    data: &str,
    sizes: [&str; 3],
    out: &std::path::Path,
    extra: &[&str],
) -> (String, String, bool) {
    let [train, eval, len] = sizes;
    let args =
        ["probe", "--model", model.to_str().unwrap(), "--data", data, "--train-size", train, "--eval-size", eval];
    freezelab(&[&args[..], &["--max-len", len, "--out", out.to_str().unwrap()], extra].concat())
}

/// `freezelab probe` on the tiny model: a row per block (embeddings, then each layer), the
/// majority class beside them, as printed and as JSON; the features it exports are the ones it
/// fitted (the same blocks, one row of `dim` values per example).
#[test]
fn probe_reports_every_block_and_exports_its_features() {
    let tmp = scratch("probe");
    let model = tmp.join("model");
    let (_, stderr, ok) = freezelab(&["synthetic", "--out", model.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let (out, features) = (tmp.join("probe.json"), tmp.join("features.json"));
    let data = model.join("data.csv");
    let (stdout, stderr, ok) = probe(
        &model,
        data.to_str().unwrap(),
        ["60", "30", "16"],
        &out,
        &["--features-out", features.to_str().unwrap()],
    );
    assert!(ok, "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let blocks: Vec<&str> = report["rows"].as_array().unwrap().iter().map(|r| r["block"].as_str().unwrap()).collect();
    assert_eq!(blocks, ["emb", "layer-0", "layer-1"]);
    for row in report["rows"].as_array().unwrap() {
        let accuracy = row["accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&accuracy), "{row}");
        assert!(stdout.contains(&format!("{:<10} {accuracy:.4}", row["block"].as_str().unwrap())), "{stdout}");
    }
    assert!(stdout.contains(&format!("majority   {:.4}", report["majority_class"].as_f64().unwrap())), "{stdout}");
    assert_eq!((report["train_examples"].as_u64(), report["validation_examples"].as_u64()), (Some(60), Some(30)));
    let exported: serde_json::Value = serde_json::from_slice(&std::fs::read(&features).unwrap()).unwrap();
    for (set, n) in [("train", 60), ("validation", 30)] {
        let blocks = exported[set].as_array().unwrap();
        assert_eq!(blocks.len(), 3);
        for block in blocks {
            assert_eq!(block["rows"].as_array().unwrap().len(), n * block["dim"].as_u64().unwrap() as usize);
        }
    }
}

/// On MiniLM and SpamAssassin the top layers already carry the task: their probes beat always
/// answering "ham" (BENCHMARKS.md, "What each layer knows", has the table and its command).
#[test]
fn on_minilm_the_top_layers_probe_beats_the_majority_class() {
    let Some(dir) = model_dir("on_minilm_the_top_layers_probe_beats_the_majority_class") else {
        return;
    };
    let out = scratch("probe-minilm").join("probe.json");
    let (_, stderr, ok) = probe(&dir, "spam", ["128", "100", "32"], &out, &[]);
    assert!(ok, "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let rows = report["rows"].as_array().unwrap();
    let majority = report["majority_class"].as_f64().unwrap();
    assert_eq!(rows.len(), 7);
    for row in &rows[5..] {
        assert!(row["accuracy"].as_f64().unwrap() > majority + 0.05, "{row} against the majority class {majority}");
    }
}

/// `train --out` writes the run's map of the validation examples (a point each, its misses the
/// examples the accuracy did not count), and `disagree` lists, from two such summaries, the
/// examples one run got right and the other wrong: A's first, then B's, at most four each.
#[test]
fn train_writes_its_map_and_disagree_compares_two_runs() {
    let tmp = scratch("disagree");
    let model = tmp.join("model");
    let (_, stderr, ok) = freezelab(&["synthetic", "--out", model.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let data = model.join("data.csv");
    let train = |freeze: &str, lr: &str| {
        let out = tmp.join(format!("{freeze}.json"));
        let args = ["train", "--model", model.to_str().unwrap(), "--data", data.to_str().unwrap(), "--freeze", freeze];
        let sizes = ["--train-size", "60", "--eval-size", "40", "--epochs", "2", "--max-len", "16", "--lr", lr];
        let (_, stderr, ok) = freezelab(&[&args[..], &sizes, &["--out", out.to_str().unwrap()]].concat());
        assert!(ok, "{stderr}");
        let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        (out, summary)
    };
    let (a_path, a) = train("none", "0.003");
    let (b_path, b) = train("head-only", "0.0001");
    let answers = |summary: &serde_json::Value| -> Vec<(u64, u64)> {
        let points = summary["examples"]["points"].as_array().expect("a map");
        assert_eq!(points.len(), 40);
        let missed = points.iter().filter(|p| p["predicted"] != p["label"]).count();
        let accuracy = summary["val_accuracy"].as_f64().unwrap();
        assert_eq!(missed, ((1.0 - accuracy) * 40.0).round() as usize, "the map's misses are the run's");
        points.iter().map(|p| (p["label"].as_u64().unwrap(), p["predicted"].as_u64().unwrap())).collect()
    };
    let (mine, theirs) = (answers(&a), answers(&b));
    let out = tmp.join("disagree.json");
    let (stdout, stderr, ok) =
        freezelab(&["disagree", a_path.to_str().unwrap(), b_path.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let table: Vec<serde_json::Value> = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let right = |(label, answer): (u64, u64)| label == answer;
    let differ: Vec<usize> = (0..40).filter(|&i| right(mine[i]) != right(theirs[i])).collect();
    let (a_wins, b_wins): (Vec<usize>, Vec<usize>) = differ.iter().partition(|&&i| right(mine[i]));
    let expected: Vec<usize> = a_wins.iter().take(4).chain(b_wins.iter().take(4)).copied().collect();
    let listed: Vec<usize> = table.iter().map(|d| d["example"].as_u64().unwrap() as usize).collect();
    assert_eq!(listed, expected, "{stdout}");
    assert!(!expected.is_empty(), "train all at a high rate against head only agree on every example: {stdout}");
    for d in &table {
        assert!(stdout.contains(d["text"].as_str().unwrap()), "{stdout}");
    }
}
