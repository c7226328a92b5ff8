"""The `train`, `evaluate` and `predict` commands of `sign-datasets`.

`add_commands` adds them to the main CLI's subcommands and to `python -m
sign_datasets.cli.training_commands`. TensorFlow is imported only once a
command runs, so `--help` stays instant.
"""

from __future__ import annotations

import argparse
import json
import sys

from sign_datasets.cli.errors import printable
from sign_datasets.core.cleaning import Dropped
from sign_datasets.models.artifacts import ModelFileError
from sign_datasets.models.data import DataSetupError
from sign_datasets.models.evaluate import ClassMismatchError, evaluate_saved_model
from sign_datasets.models.predict import predict_files
from sign_datasets.models.train import TrainingOptions, train
from sign_datasets.models.transfer import WeightsError
from sign_datasets.models.tune import KerasTunerMissing

MODEL_CHOICES = ("dense", "regularized", "cnn", "transfer", "tune")
BACKBONE_CHOICES = ("mobilenet_v2", "inception_v3")


# Errors whose message tells the user what to do; no traceback for them.
USER_ERRORS = (DataSetupError, ClassMismatchError, WeightsError, KerasTunerMissing, Dropped,
               ModelFileError, FileNotFoundError)


def _report_user_errors(command):
    def run(args) -> int:
        try:
            return command(args)
        except USER_ERRORS as error:
            line = " ".join(part.strip() for part in str(error).splitlines() if part.strip())
            print(f"error: {printable(line)}", file=sys.stderr)
            return 2
    return run


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _accuracy(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {value}")
    return value


@_report_user_errors
def cmd_train(args) -> int:
    options = TrainingOptions(
        dataset=args.dataset, model=args.model, epochs=args.epochs, out=args.out,
        batch_size=args.batch_size, data_dir=args.data_dir,
        stop_at_accuracy=args.stop_at_accuracy, weights=args.weights, backbone=args.backbone,
        image_size=args.image_size, channels=args.channels,
        validation_share=args.validation_share, patience=args.patience,
        learning_rate=args.learning_rate, tune_max_epochs=args.tune_max_epochs,
        tune_max_trials=args.tune_max_trials, seed=args.seed, build=not args.no_build)
    metrics = train(options)
    evaluation = metrics["evaluation"]
    print(f"{metrics['dataset_full_name']} {metrics['model']}: {metrics['evaluated_on']} accuracy "
          f"{evaluation['accuracy']:.4f} on {evaluation['examples']} examples (best epoch "
          f"{metrics['best_epoch']} of {metrics['epochs_run']}, val_accuracy "
          f"{metrics['best_val_accuracy']:.4f}, {metrics['fit_seconds']:.0f} s of training)")
    if metrics["tuning"]:
        tuning = metrics["tuning"]
        print(f"tuning: {tuning['trials']} trials, best {tuning['best_hyperparameters']} "
              f"(val_accuracy {tuning['best_val_accuracy']:.4f})")
    print(f"written to {options.out_dir().resolve()}")
    return 0


@_report_user_errors
def cmd_evaluate(args) -> int:
    result = evaluate_saved_model(args.model, args.dataset, split=args.split,
                                  data_dir=args.data_dir, batch_size=args.batch_size,
                                  build=not args.no_build)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{args.dataset} {args.split}: accuracy {result['accuracy']:.4f}, cross-entropy "
          f"{result['cross_entropy']:.4f} on {result['examples']} examples")
    weakest = sorted((value, name) for name, value in result["per_class_accuracy"].items()
                     if value is not None and value < 1)[:3]
    if weakest:
        print("weakest classes: " + ", ".join(f"{name} {value:.2f}" for value, name in weakest))
    return 0


@_report_user_errors
def cmd_predict(args) -> int:
    failed = 0
    for path, ranking, error in predict_files(args.model, args.images, top=args.top):
        if error:
            failed += 1
            print(f"error: {path}: {error}", file=sys.stderr)
            continue
        print(f"{path}: " + ", ".join(f"{name} {probability:.3f}" for name, probability in ranking))
    return 1 if failed else 0


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="TFDS data dir where the dataset was built "
                                           "(default: TFDS_DATA_DIR or ~/tensorflow_datasets)")
    parser.add_argument("--no-build", action="store_true",
                        help="refuse a dataset not built yet instead of building it first")


def add_commands(subparsers) -> None:
    """Adds train, evaluate and predict to an argparse subparsers object."""
    train = subparsers.add_parser(
        "train", help="train one of the course's models on a built dataset",
        description="Trains on the dataset's train split (validation from its validation split, "
                    "or the last share of train), evaluates on test, and writes the model, an "
                    "exported SavedModel, logs, plots and metrics.json into --out. Without "
                    "TensorFlow, with KERAS_BACKEND=jax, it trains on JAX (no SavedModel or "
                    "TensorBoard logs then).")
    train.add_argument("dataset", help="e.g. sign_mnist_csv or sign_language_img/28x28")
    train.add_argument("--model", choices=MODEL_CHOICES, default="cnn")
    train.add_argument("--epochs", type=_positive_int, default=5)
    train.add_argument("--batch-size", type=_positive_int, default=64)
    train.add_argument("--out", help="run folder (default: runs/DATASET-MODEL)")
    _add_data_dir(train)
    train.add_argument("--stop-at-accuracy", type=_accuracy, metavar="X",
                       help="the course's callback: stop once training accuracy passes X")
    train.add_argument("--weights", metavar="PATH",
                       help="transfer: local file of the backbone's pretrained weights (keras' "
                            "no-top .h5); without it the backbone starts random. Nothing is "
                            "downloaded")
    train.add_argument("--backbone", choices=BACKBONE_CHOICES, default="mobilenet_v2",
                       help="transfer: the frozen backbone (inception_v3 is cut at mixed7)")
    train.add_argument("--image-size", metavar="N|HxW",
                       help="resize images to this (needed for datasets of mixed sizes; "
                            "transfer default: 96 for mobilenet_v2, 150 for inception_v3)")
    train.add_argument("--channels", type=int, choices=(1, 3),
                       help="1 turns colour images grey, 3 grey ones RGB (default: as stored)")
    train.add_argument("--validation-share", type=float, default=0.1,
                       help="share of train held out when the dataset has no validation split")
    train.add_argument("--patience", type=_positive_int, default=3,
                       help="epochs without a better val_accuracy before stopping")
    train.add_argument("--learning-rate", type=float, help="Adam's learning rate (default 1e-3)")
    train.add_argument("--tune-max-epochs", type=_positive_int, default=20,
                       help="tune: Hyperband's max_epochs (the course's 20)")
    train.add_argument("--tune-max-trials", type=_positive_int,
                       help="tune: stop the search after this many trials")
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(func=cmd_train)

    evaluate = subparsers.add_parser(
        "evaluate", help="score a saved model on a split of a built dataset")
    evaluate.add_argument("model", help="a run folder or its model.keras")
    evaluate.add_argument("dataset")
    evaluate.add_argument("--split", default="test", help="a TFDS split, e.g. test or train[90%%:]")
    _add_data_dir(evaluate)
    evaluate.add_argument("--batch-size", type=_positive_int, default=256)
    evaluate.add_argument("--json", action="store_true", help="print the result as JSON")
    evaluate.set_defaults(func=cmd_evaluate)

    predict = subparsers.add_parser(
        "predict", help="the most likely classes of image files, from a saved model")
    predict.add_argument("model", help="a run folder or its model.keras")
    predict.add_argument("images", nargs="+", metavar="IMAGE",
                         help="JPEG, PNG, BMP or GIF files, of any size (resized to the model's input)")
    predict.add_argument("--top", type=_positive_int, default=3)
    predict.set_defaults(func=cmd_predict)
