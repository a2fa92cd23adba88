"""Commands for harm categories: ``crestguard taxonomy``, ``crestguard policy``, ``crestguard train categories`` and
``crestguard eval categories``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

taxonomy_app = typer.Typer(help="The harm taxonomy (MLCommons S1-S14 + jailbreak + prompt injection) and its "
                                "mappings.", no_args_is_help=True)
policy_app = typer.Typer(help="Custom categories learned from examples, kept in a policy file that the guard "
                              "(--thresholds) and the server read.", no_args_is_help=True)

POLICY = typer.Option(Path("policy.yaml"), "--policy", help="The policy file (YAML; created if missing).")
MODEL = typer.Option("crest-me5s", "--model", "-m", help="Guard name or model folder.")
BACKEND = typer.Option("onnx", "--backend", help="torch or onnx (features for training and examples).")


def _say(msg: str) -> None:
    typer.echo(msg, err=True)


@taxonomy_app.command("show")
def show() -> None:
    """The categories and the OpenAI mapping."""
    from crestguard.taxonomy import load_taxonomy

    tax = load_taxonomy()
    for c in tax.categories:
        typer.echo(f"{c.code:>4}  {c.name:<26} {c.description}")
    typer.echo("\nOpenAI moderation keys:")
    for key, (mode, cats) in tax.openai.items():
        typer.echo(f"  {key:<24} {mode} of {', '.join(cats)}")


@taxonomy_app.command("check")
def check(data_dir: Optional[Path] = typer.Option(None, "--data-dir")) -> None:
    """Per mapped source: items with a category target, and raw categories left unknown."""
    from crestguard.data import DATASETS, load_dataset
    from crestguard.taxonomy import load_taxonomy

    tax = load_taxonomy()
    for name in tax.sources:
        if name not in DATASETS:
            typer.echo(f"{name:<28} (no loader registered)")
            continue
        records = load_dataset(name, data_dir).records
        unknown = tax.unmapped(records)
        typer.echo(f"{name:<28} {len(records) - sum(unknown.values()):>6} of {len(records):>6} with a category target")
        for (_, raw), n in unknown.most_common(8):
            typer.echo(f"    unknown: {raw!r} x {n}")


@policy_app.command("add")
def add(
    name: str = typer.Argument(..., help="The category's name (reported like a built-in category)."),
    examples: Path = typer.Option(..., "--examples", exists=True, dir_okay=False,
                                  help="Texts of the category, one per line (any language; 20-200 work best)."),
    negatives: Optional[Path] = typer.Option(None, "--negatives", exists=True, dir_okay=False,
                                             help="Texts that are NOT of the category, one per line."),
    policy: Path = POLICY,
    model: str = MODEL,
    backend: str = BACKEND,
    action: str = typer.Option("flag", "--action", help="flag (blocks on its own), report or ignore."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Override the learned threshold."),
) -> None:
    """Learn a category from example texts (seconds on a CPU) and store it in the policy file."""
    import time

    from crestguard import load_guard
    from crestguard.guard.policy import add_category, learn, read_examples

    started = time.time()
    guard = load_guard(model, backend=backend)
    pos = read_examples(examples)
    neg = read_examples(negatives) if negatives else []
    cat = learn(guard, name, pos, neg)
    add_category(policy, cat, action, threshold)
    typer.echo(f"{name}: learned from {len(pos)} examples and {len(neg)} negatives "
               f"(+{cat.stats['background']} background texts) in {time.time() - started:.1f} s; threshold "
               f"{cat.threshold:.3f}, out-of-fold recall {cat.stats['oof_recall']:.2f}; action {action}; "
               f"written to {policy}")


@policy_app.command("list")
def list_(policy: Path = POLICY) -> None:
    """The custom categories and rules of a policy file."""
    from crestguard.guard.policy import read_policy

    doc = read_policy(policy)
    for name, raw in (doc.get("custom") or {}).items():
        st = raw.get("stats") or {}
        typer.echo(f"custom  {name:<24} threshold {raw.get('threshold')}  examples {st.get('positives')} / "
                   f"negatives {st.get('negatives')}  model {str(raw.get('model'))[:12]}")
    for name, rule in (doc.get("categories") or {}).items():
        typer.echo(f"rule    {name:<24} {rule}")


@policy_app.command("remove")
def remove(name: str = typer.Argument(...), policy: Path = POLICY) -> None:
    """Remove a custom category (and its rule) from the policy file."""
    from crestguard.guard.policy import remove_category

    remove_category(policy, name)
    typer.echo(f"removed {name} from {policy}")


@policy_app.command("refit")
def refit_cmd(policy: Path = POLICY, model: str = MODEL, backend: str = BACKEND) -> None:
    """Relearn every custom category from its stored examples (after the model changed)."""
    from crestguard import load_guard
    from crestguard.guard.policy import refit

    names = refit(policy, load_guard(model, backend=backend))
    typer.echo(f"relearned {', '.join(names) or 'nothing'} in {policy}")


def train_categories_cmd(
    model: str = MODEL,
    backend: str = BACKEND,
    config: Optional[Path] = typer.Option(None, "--config", help="Default: configs/categories.yaml."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir"),
) -> None:
    """Train the category head on the guard's pooled features; writes <model>/categories/head.npz."""
    from crestguard.training.categories import train_categories

    train_categories(model, backend, config, data_dir=str(data_dir) if data_dir else None, say=_say)


def eval_categories_cmd(
    model: str = MODEL,
    backend: str = BACKEND,
    out: Path = typer.Option(Path("reports/categories"), "--out", help="Report folder."),
    transfer: bool = typer.Option(True, "--transfer/--no-transfer", help="Also run the custom-category transfer "
                                                                         "experiment."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir"),
) -> None:
    """Per-category precision/recall/F1/AUPRC, confusion, per-language hate, custom-category transfer."""
    from crestguard.evaluation.categories import evaluate_categories

    evaluate_categories(model, backend, out, transfer=transfer, data_dir=str(data_dir) if data_dir else None,
                        say=_say)


def register(app: typer.Typer) -> None:
    from crestguard.evaluation.cli import eval_app
    from crestguard.training.cli import train_app

    app.add_typer(taxonomy_app, name="taxonomy")
    app.add_typer(policy_app, name="policy")
    train_app.command("categories")(train_categories_cmd)
    eval_app.command("categories")(eval_categories_cmd)
