"""``python -m crestguard.training RECIPE [--set k=v]``: the entry point for ``torchrun`` / ``accelerate launch``.

    torchrun --nproc_per_node=4 -m crestguard.training configs/crest-base.yaml --set out_dir=runs/base
"""

from crestguard.training.cli import run_cmd, train_app  # noqa: F401

if __name__ == "__main__":
    import typer

    typer.run(run_cmd)
