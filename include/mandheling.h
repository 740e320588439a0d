/* Mandheling public C API: statuses, logging, models, training, evaluation, checkpoints.
 * Every call returns a status (0 ok, negative error); the library never prints or exits. */
#ifndef MANDHELING_H
#define MANDHELING_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MH_VERSION_MAJOR 0
#define MH_VERSION_MINOR 2
#define MH_VERSION_PATCH 0
#define MH_VERSION_STRING "0.2.0"
/* The library's version as MAJOR * 10000 + MINOR * 100 + PATCH (the header's may differ from the
 * shared library's a program runs with). */
int mh_version(void);

/* ---- status and errors ---------------------------------------------------------------- */
typedef enum mh_status {
  MH_OK = 0,
  MH_ERR_INVALID_ARG = -1, /* a caller's argument or option is out of range */
  MH_ERR_NOMEM = -2,       /* an allocation failed */
  MH_ERR_IO = -3,          /* open/read/write/rename failed */
  MH_ERR_FORMAT = -4,      /* a file's content is malformed (magic, sizes, syntax) */
  MH_ERR_SHAPE = -5,       /* tensor shapes do not fit together */
  MH_ERR_UNSUPPORTED = -6, /* valid request this build or algorithm cannot do */
  MH_ERR_BACKEND = -7,     /* a compute backend failed (e.g. the DSP went away) */
  MH_ERR_INTERNAL = -8     /* a bug: an invariant did not hold */
} mh_status;

const char *mh_status_name(int status);
/* The message of the calling thread's most recent error, naming the file/flag and the problem. */
const char *mh_last_error(void);
void mh_clear_error(void);

/* ---- logging and progress -------------------------------------------------------------- */
typedef enum mh_log_level { MH_LOG_ERROR = 0, MH_LOG_WARN = 1, MH_LOG_INFO = 2, MH_LOG_DEBUG = 3 } mh_log_level;
typedef void (*mh_log_fn)(void *user, int level, const char *msg);
/* Installs the process-wide log sink; NULL silences the library (the default). */
void mh_set_log(mh_log_fn fn, void *user);

/* ---- element types --------------------------------------------------------------------- */
typedef enum mh_dtype {
  MH_DTYPE_F32 = 0,
  MH_DTYPE_S8 = 1,
  MH_DTYPE_S16 = 2,
  MH_DTYPE_S32 = 3,
  MH_DTYPE_U8 = 4,
  MH_DTYPE_S64 = 5,
  MH_DTYPE_F64 = 6
} mh_dtype;
size_t mh_dtype_size(mh_dtype dt);
const char *mh_dtype_name(mh_dtype dt); /* safetensors spelling: F32, I8, I16, I32, U8, I64, F64 */


/* ---- models ------------------------------------------------------------------------------- */
typedef struct mh_model mh_model;

/* A zoo name (lenet5, cnn6, cnn6-nobn, vgg11, resnet18, mobilenetv2) or a model-file path.
 * Parameters get PyTorch's default initialisation from `seed`. */
int mh_model_create(mh_model **model, const char *name_or_path, uint64_t seed);
void mh_model_free(mh_model *model);
int64_t mh_model_param_count(const mh_model *model);
const char *mh_model_name(const mh_model *model); /* zoo name, file path, or a checkpoint's "model" */
/* A human-readable table: layers, output shapes, parameters, MACs per sample, and the training
 * memory estimate for `batch`. Caller frees *text. */
int mh_model_describe(const mh_model *model, int batch, char **text);
/* The model in the text model format (see docs/MODEL_FORMAT.md). Caller frees *text. */
int mh_model_to_text(const mh_model *model, char **text);

/* ---- training ----------------------------------------------------------------------------- */
typedef enum mh_schedule { MH_SCHEDULE_CONSTANT = 0, MH_SCHEDULE_STEP = 1, MH_SCHEDULE_COSINE = 2 } mh_schedule;

typedef struct mh_train_config {
  const char *precision; /* "fp32" (default), "int8" (mixed precision) or "niti" (integer-only) */
  const char *rescale;   /* niti: "adaptive" (default) or "exact": how int32 results return to int8 */
  const char *backend;   /* "cpu" (default), "dsp" or "auto": where the integer GEMMs of int8/niti run:
                            "dsp" all of them, "auto" those the planner places on the DSP (the
                            rest on the CPU, beside it). Results are bit-identical either way;
                            without a DSP, "dsp" warns and trains on the CPU, "auto" notes it */
  const char *profile;   /* --backend auto: the device profile whose plan places the work ("sd865"
                            default, "host", or a profile file) */
  int no_reuse;          /* --backend dsp: rebuild each DSP subgraph (descriptor, checks, weight copy and
                            packing) before every run instead of preparing it once */
  const char *mu;        /* niti: gradient bit width (the learning rate) per epoch, e.g. "5,5,4,3"; the last
                            value repeats. NULL: 4, then 3 from 40% of the epochs, 2 from 80% */
  int epochs;            /* default 5 */
  int batch;             /* default 64 */
  float lr;              /* default 0.05 */
  float momentum;        /* default 0.9 */
  float weight_decay;    /* default 5e-4 */
  int nesterov;          /* default 0 */
  const char *optimizer; /* fp32/int8: "sgd" (default; momentum, nesterov), "adam" (weight decay as an L2
                            term in the gradient) or "adamw" (decoupled weight decay), PyTorch's
                            definitions with bias correction; niti has its own integer update */
  double beta1, beta2;   /* adam/adamw: default 0.9, 0.999 */
  double eps;            /* adam/adamw: default 1e-8 */
  const char *freeze;     /* layers whose parameters stay fixed: comma-separated names, a..b ranges
                             (graph order), last:N (the last N layers with parameters); NULL: none.
                             Frozen layers compute no weight gradient, backward stops below the
                             first trainable layer, and a frozen batch norm normalises with its
                             running statistics */
  const char *train_only; /* the layers that train, all others frozen (same forms); not with freeze */
  int frozen_bn_train;    /* 1: frozen batch norms still use batch statistics and update their running
                             statistics (default 0: the eval form) */
  mh_schedule schedule;  /* default cosine (per step, to 0 at the end) */
  int step_size;         /* step schedule: epochs between decays (default: epochs/3, at least 1) */
  float gamma;           /* step schedule: decay factor (default 0.1) */
  int threads;           /* default 2 */
  uint64_t seed;         /* default 1 */
  long max_steps;        /* stop after this many optimizer steps in total (0: no limit) */
  int augment;           /* 1: random crop (pad 2 for 28x28, 4 for 32x32) + horizontal flip for 3-channel data */
  int force_reference;   /* 1: portable oracle kernels only (slow; for testing) */
  int keep_denormals;    /* 0 (default): steps run with flush-to-zero / denormals-are-zero, which
                            avoids ~100x slow paths on denormal operands; 1: IEEE denormals */
  const char *isa;       /* CPU kernel table: "ref", "avx2", "avxvnni", "avx512", "avx512vnni"; NULL: env
                            MH_ISA, else the fastest this CPU supports. int8 and niti results are the
                            same on every table; fp32 differs only by summation order */
  int no_segments;       /* --backend dsp|auto: run every layer as its own DSP message instead of chains of
                            layers (niti convolution, ReLU, 2x2 max-pool) as one segment per pass */
} mh_train_config;

void mh_train_config_default(mh_train_config *cfg);

/* For language bindings: a configuration on the heap with the defaults, its fields set by name from
 * strings ("lr", "0.01"; "schedule", "constant"; "precision", "niti"; ... every field above, by its
 * name), string values copied and owned by it. An unknown key or a bad value is an error. */
mh_train_config *mh_train_config_new(void);
int mh_train_config_set(mh_train_config *cfg, const char *key, const char *value);
void mh_train_config_free(mh_train_config *cfg);

typedef struct mh_trainer mh_trainer;

/* The trainer borrows `model` (which must outlive it). */
int mh_trainer_create(mh_trainer **trainer, mh_model *model, const mh_train_config *cfg);
void mh_trainer_free(mh_trainer *trainer);

/* One SGD step on a batch: x is (n, c, h, w) floats, labels in [0, classes). Returns the loss. */
int mh_trainer_step(mh_trainer *t, const float *x, const int32_t *labels, int n, float *loss);
/* Inference-mode forward: adds the number of correct top-1 predictions and the summed loss. */
int mh_trainer_evaluate_batch(mh_trainer *t, const float *x, const int32_t *labels, int n, long *correct,
                              double *loss_sum);

/* Progress of a fit, reported to the callback after every step and at each epoch's end. */
typedef struct mh_progress {
  int epoch, epochs;             /* 0-based epoch */
  long step_in_epoch, steps_per_epoch;
  long step, total_steps;        /* optimizer steps so far (global), and planned */
  double loss;                   /* running mean over this epoch */
  double lr;
  double seconds;                /* wall time since the fit started */
  double samples_per_second;
  int epoch_done;                /* 1 on the end-of-epoch report */
  double test_accuracy;          /* on epoch_done with a test set, else -1 */
  int mu;                        /* niti: this epoch's gradient bit width (the learning rate), else 0 */
  double test_loss;              /* on epoch_done with a test set, else -1 */
} mh_progress;
typedef void (*mh_progress_fn)(void *user, const mh_progress *p);

/* Rescaling of int32 results to int8 (niti), summed over a run. */
typedef struct mh_rescale_report {
  long calls;            /* int32 tensors shifted to int8 */
  long max_passes;       /* extra full max passes over int32 (exact: one per call) */
  long passes_avoided;   /* adaptive: calls that used the predicted shift and needed no max pass */
  long fallbacks;        /* adaptive: calls that saturated past the threshold and were redone */
  long mispredicted;     /* adaptive: calls whose predicted shift differed from the exact one */
  double bytes_avoided;  /* int32 bytes not re-read thanks to the prediction */
  double seconds;        /* time spent rescaling */
} mh_rescale_report;

/* The DSP's share of a run (integer GEMMs offloaded), since the trainer was created. */
/* A backend's counter by name (a backend's `stats`): JSON writes it as "<backend>_<name>". */
typedef struct mh_stat {
  const char *name;
  double value;
} mh_stat;
#define MH_STATS_MAX 48

typedef struct mh_dsp_report {
  int active;            /* a DSP session is open and alive */
  long gemms;            /* int8 GEMMs run on the DSP */
  long cpu_fallbacks;    /* GEMMs meant for the DSP that ran on the CPU (too big, or the DSP failed) */
  long messages;         /* doorbell messages sent */
  double macs;           /* int8 MACs done on the DSP */
  double bytes_to_dsp, bytes_from_dsp;
  long split_parts;      /* batch splitting: messages of GEMMs split along K to fit the shared region */
  long vtcm_chunks;      /* batch splitting: K chunks the DSP ran to stay within VTCM (of split GEMMs) */
  long fused_gemms;      /* rescaling on the DSP: GEMMs whose int8 result came back with the shift applied */
  double int32_bytes_kept; /* int32 bytes those did not send back */
  int reuse;             /* subgraphs stay prepared across runs (0: --no-reuse, rebuilt before every run) */
  long sg_runs;          /* subgraph runs (a layer's forward, or its backward GEMMs): one message each */
  long sg_prepares;      /* subgraph preparations: descriptor sent, checked by the DSP, memory planned */
  long sg_nodes_checked; /* GEMM nodes the DSP validated while preparing */
  double weight_bytes;   /* weights copied into the shared region (with reuse: only when they changed) */
  double packed_bytes;   /* weight bytes the DSP packed into its kernel's layout */
  long cosched_runs;     /* subgraph runs the CPU worked beside (a backward GEMM on each side) */
  long eltwise_ops;      /* niti: ReLU, max-pool and residual-add passes run on the DSP */
  /* Hexagon packets the DSP program executed, counted by the emulator's plugin (derived from the
   * emulated execution, not measured on a phone; 0 when the plugin is not loaded) */
  int packets_counted;
  double packets, hvx_packets;   /* all, and those holding HVX instructions */
  double packets_fwd, packets_bwd, packets_other; /* in forward runs, backward runs, other messages */
  /* segments: chains of layers (niti convolution, ReLU, 2x2 max-pool) run by one message per pass */
  long seg_runs;         /* segment runs */
  long seg_prepares;     /* segment programs sent and checked */
  /* every counter of the backend by name, as it reports them (the fields above pick some) */
  int n_stats;
  mh_stat stats[MH_STATS_MAX];
} mh_dsp_report;

typedef struct mh_fit_summary {
  long steps;
  int epochs;               /* epochs completed (a partial epoch counts when max_steps stops it) */
  double seconds;
  double train_loss;        /* mean over the last epoch's steps (NaN when no step was taken) */
  double test_accuracy;     /* fraction in [0, 1]; -1 without a test set */
  double test_loss;
  size_t peak_bytes;        /* planned training memory: parameters, gradients, optimizer, activations */
  size_t rss_peak_bytes;    /* the process's peak resident set as the OS reports it */
  mh_rescale_report rescale; /* integer algorithms: what shifting int32 results to int8 cost */
  mh_dsp_report dsp;         /* --backend dsp|auto: what ran on the DSP */
  int stopped;               /* 1: mh_trainer_request_stop ended the fit at a step boundary */
} mh_fit_summary;

/* Trains on the data set in `data_dir` (MNIST/Fashion-MNIST IDX, gzipped or not, or CIFAR-10 binary)
 * for cfg->epochs, evaluating on the test split after each epoch. Continues from the trainer's
 * position (after mh_trainer_load). */
int mh_fit(mh_trainer *t, const char *data_dir, mh_progress_fn progress, void *user, mh_fit_summary *summary);
/* Evaluates on the test split of `data_dir`. */
int mh_evaluate(mh_trainer *t, const char *data_dir, double *accuracy, double *loss);

/* Checkpoints (safetensors): weights, batch-norm statistics, optimizer state and metadata (model,
 * step, epoch, RNG state, precision, hyper-parameters). Saving is atomic. Loading checks that every
 * tensor matches the model and restores the training position for exact resumption. */
int mh_trainer_save(mh_trainer *t, const char *path);
/* Restores weights, statistics, optimizer state, position and the hyper-parameters of the run
 * (lr, momentum, weight decay, Nesterov, schedule, epochs, batch, seed, augmentation). */
int mh_trainer_load(mh_trainer *t, const char *path);
/* Changes how far training goes: epochs (-1 keeps it) and max_steps (-1 keeps it, 0 no limit). */
int mh_trainer_set_length(mh_trainer *t, int epochs, long max_steps);
/* Weights from a safetensors file (a Mandheling fp32/int8 checkpoint, or a PyTorch state_dict saved
 * with safetensors, named as the model's parameters: conv1.weight, conv1_bn.running_mean, ...):
 * every parameter and batch-norm statistic, F32 and of the model's shape. A checkpoint's optimizer
 * state and PyTorch's num_batches_tracked are skipped; any other tensor, or a missing one, is an
 * error naming it, and then nothing is changed. Integer (niti) models quantise the loaded weights. */
int mh_model_load_weights(mh_model *m, const char *path);

/* Evaluation-mode logits (n x classes floats; integer algorithms' dequantised) of n samples, given
 * as the model's inputs (n x C x H x W floats, normalised as in training: see mh_trainer_input_norm),
 * in batches of the trainer's batch size. */
int mh_trainer_predict(mh_trainer *t, const float *x, int n, float *logits);
/* The input normalisation of training, x = (pixel/255 - mean[c]) / std[c] per channel (up to 3):
 * 1 when known (after mh_fit, or from a checkpoint that carries it), else 0. */
int mh_trainer_input_norm(const mh_trainer *t, float mean[3], float std[3]);
/* Logits of every sample of `data`: a data directory's test split (labels returned) or an IDX images
 * file, gzipped or not (*labels NULL), normalised as in training (the trainer's normalisation, or a
 * directory's training-split statistics when the trainer has none). *logits (n x classes) and
 * *labels are the caller's to free. */
int mh_predict_data(mh_trainer *t, const char *data, float **logits, int32_t **labels, int *n);

/* A new head: the model's last layer (linear) replaced by a freshly initialised one (from seed) with
 * `classes` outputs, every other parameter and buffer kept. *m is replaced (the old one freed); on
 * error it is left as it was. For fine-tuning to a new set of classes. */
int mh_model_set_classes(mh_model **m, int classes, uint64_t seed);
/* Writes the model's inference graph as ONNX (opset 13): input "input" [batch, C, H, W], output
 * [batch, classes], batch norm in eval form, parameters as initializers named as in checkpoints.
 * integer = 1 exports niti's int8 weights dequantised (q * 2^exponent) instead of the float ones.
 * Written atomically; MH_ERR_UNSUPPORTED when built without protobuf-c and ONNX's schema. */
int mh_model_export_onnx(const mh_model *m, int integer, const char *path);
/* Parameters for apps and federated clients. mh_model_n_params: how many parameter tensors;
 * mh_model_param_info: the i-th's name (as in checkpoints and PyTorch state_dicts), rank and shape
 * (up to 4 dimensions). */
int mh_model_n_params(const mh_model *m);
int mh_model_param_info(const mh_model *m, int i, const char **name, int *ndim, int64_t shape[4]);
/* The model's state as one float array: every parameter in mh_model_param_info order, then the
 * batch-norm running statistics; mh_trainer_state_floats gives its length. get copies it out (niti:
 * the int8 weights dequantised); set copies it in (niti: quantised as --init does) and keeps the
 * optimizer's state. For FedAvg: get from each client, average, set. n must equal the length. */
size_t mh_trainer_state_floats(const mh_trainer *t);
int mh_trainer_get_state(const mh_trainer *t, float *out, size_t n);
int mh_trainer_set_state(mh_trainer *t, const float *in, size_t n);
/* The learning rate from the next step on: lr, constant (the schedule is replaced). */
int mh_trainer_set_lr(mh_trainer *t, float lr);
/* The number of classes the model outputs. */
int mh_model_classes(const mh_model *m);

/* Asks a running mh_fit to stop at the next step boundary (it then returns MH_OK with
 * summary.stopped = 1; the trainer can be saved and resumed exactly). Safe from the progress
 * callback, another thread or a signal handler. The request is cleared when mh_fit starts. */
void mh_trainer_request_stop(mh_trainer *t);

/* The trainer's optimizer: "sgd", "adam" or "adamw" (after --resume, the checkpoint's). */
const char *mh_trainer_optimizer(const mh_trainer *t);
/* The precision a checkpoint was trained in ("fp32", "int8", "niti"). */
int mh_checkpoint_precision(const char *path, char *out, size_t size);
/* The model a checkpoint was trained with (its "model" metadata and the embedded model text) */
int mh_checkpoint_model(const char *path, uint64_t seed, mh_model **model);

/* Median wall time of full training steps (forward, backward, optimizer) on synthetic data. */
typedef struct mh_bench_result {
  double step_ms_median, step_ms_min;
  size_t peak_bytes;
  double rescale_share;  /* integer algorithms: fraction of step time spent rescaling int32 to int8 */
  char *profile; /* with profile=1: per-op-type forward/backward time table (caller frees), else NULL */
  mh_dsp_report dsp_per_step; /* --backend dsp: the DSP traffic of one timed step (counts divided by steps) */
  char *dsp_functions; /* with packet counts: the DSP program's busiest functions per step (caller frees), else NULL */
  /* with packet counts: per node and pass (fwd, bwd) run on the DSP, a tab-separated table with a
   * header line: node, name, pass, MMAC, packets counted per step, packets the cost model gives,
   * their ratio, then the work the model counts (caller frees), else NULL */
  char *dsp_layers;
  /* with packet counts: the clock and HVX contexts of the device profile's DSP (the trainer's, or
   * sd865 for "host"), to turn packets into time at one packet per cycle per context */
  char dsp_profile[64];
  double dsp_clock_ghz;
  int dsp_contexts;
} mh_bench_result;
int mh_bench(mh_trainer *t, int batch, int steps, int profile, mh_bench_result *res);

/* The CPU-DSP placement of a training step under an algorithm and a device profile ("sd865", a
 * profile file, or "host": this machine's CPU measured now, the DSP from sd865's figures), with each
 * task's modelled cost on each side and the reason for its place. All times and energies are
 * modelled, not measured. text: a printable plan (caller frees). */
typedef struct mh_plan_report {
  double cpu_fp32_ms, cpu_fp32_mj; /* everything on the CPU in FP32 */
  double cpu_ms, cpu_mj;           /* this algorithm on the CPU only */
  double dsp_ms, dsp_mj;           /* every task the DSP can run on the DSP */
  double cosched_ms, cosched_mj;   /* the planned placement */
  int cosched_handoffs;
  double cosched_dsp_macs_share;
} mh_plan_report;
int mh_model_plan(const mh_model *model, const char *precision, const char *profile, int batch, int threads,
                  char **text, mh_plan_report *report);
/* The same for partial training (mh_train_config's freeze / train_only lists; NULL, NULL: all train):
 * frozen layers' weight gradients, the backward below the first trainable layer and frozen
 * parameters' updates are not in the plan. */
int mh_model_plan_partial(const mh_model *model, const char *precision, const char *profile, int batch, int threads,
                          const char *freeze, const char *train_only, char **text, mh_plan_report *report);

/* Whether a DSP can be used: 1 when the DSP program starts and answers the handshake (desc says
 * what runs where), 0 when not (desc says why). Starts and stops the DSP once. */
int mh_dsp_probe(char *desc, size_t n);

/* This CPU: its brand, /proc/cpuinfo-style family and model, the instruction sets found and, per
 * kernel family, what each kernel table runs (which is used by default). Caller frees *text. */
int mh_cpu_describe(char **text);
/* One line naming this CPU: "brand (family F, model M)". */
const char *mh_cpu_name(void);

/* Planned training memory (bytes) for the trainer's batch: what peak_bytes reports. */
size_t mh_trainer_peak_bytes(const mh_trainer *t);
const char *mh_trainer_isa(const mh_trainer *t);
/* "adaptive" or "exact": how the trainer shifts int32 results to int8 (integer algorithms). */
const char *mh_trainer_rescale_mode(const mh_trainer *t);
void mh_trainer_dsp_report(const mh_trainer *t, mh_dsp_report *r);
/* The rescaling counts of the current (or last) fit so far (integer algorithms; zeros otherwise). */
void mh_trainer_rescale_report(const mh_trainer *t, mh_rescale_report *r);

#ifdef __cplusplus
}
#endif
#endif
