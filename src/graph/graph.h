/* The model graph: an ordered list of nodes (each op reads earlier nodes), its parameters and
 * buffers, and the builder calls the zoo and the model-file parser use. No compute happens here. */
#ifndef MH_GRAPH_GRAPH_H
#define MH_GRAPH_GRAPH_H

#include <stdint.h>

#include "mandheling.h"

typedef enum mh_op_type {
  MH_OP_INPUT = 0,
  MH_OP_CONV2D,
  MH_OP_LINEAR,
  MH_OP_BATCHNORM,
  MH_OP_RELU,
  MH_OP_RELU6,
  MH_OP_MAXPOOL,
  MH_OP_AVGPOOL,
  MH_OP_GAP,
  MH_OP_ADD,
  MH_OP_FLATTEN,
  MH_OP_COUNT
} mh_op_type;

const char *mh_op_name(mh_op_type op); /* model-file spelling: "conv", "linear", ... */

#define MH_NAME_MAX 64

typedef struct mh_node {
  mh_op_type op;
  char name[MH_NAME_MAX];
  int in[2], n_in; /* producer node ids, all < this node's id */
  int c, h, w;     /* per-sample output shape (linear/flatten outputs: c features, h = w = 1) */
  /* conv2d / linear */
  int out_c, k, stride, pad, groups, bias;
  /* pools */
  int pool_k, pool_s, pool_p;
  /* batchnorm */
  float eps, momentum;
  /* parameters: params[param0 .. param0+n_params) ; buffers likewise */
  int param0, n_params, buffer0, n_buffers;
  int n_consumers;
} mh_node;

typedef enum mh_param_kind { MH_PARAM_WEIGHT, MH_PARAM_BIAS, MH_PARAM_BN_GAMMA, MH_PARAM_BN_BETA } mh_param_kind;

typedef struct mh_param {
  char name[MH_NAME_MAX + 16]; /* "<node>.weight" etc., as in a PyTorch state_dict */
  mh_param_kind kind;
  int node;
  int ndim, shape[4];
  int64_t numel;
  int64_t offset; /* into the model's flat parameter / gradient / momentum arrays */
  int fan_in;     /* for PyTorch default init bounds */
} mh_param;

/* Non-trained state: batch-norm running mean/var (float) and num_batches_tracked. */
typedef struct mh_buffer {
  char name[MH_NAME_MAX + 24];
  int node;
  int64_t numel;
  int64_t offset; /* into the model's flat buffer array */
  float init;     /* 0 for running_mean, 1 for running_var */
} mh_buffer;

typedef struct mh_graph {
  mh_node *nodes;
  int n_nodes, cap_nodes;
  mh_param *params;
  int n_params, cap_params;
  int64_t n_param_floats;
  mh_buffer *buffers;
  int n_buffers, cap_buffers;
  int64_t n_buffer_floats;
  char model_name[128]; /* zoo name or file path */
} mh_graph;

/* Starts a graph whose node 0 is the input of c x h x w per sample. */
int mh_graph_init(mh_graph *g, int c, int h, int w);
void mh_graph_free(mh_graph *g);
/* Partial training: from a per-node mask of the layers whose parameters may train, trains[i] = node
 * i has parameters and trains; needs_bwd[i] = its backward runs (it trains, or a node before it on a
 * path to it does, so the gradient must pass through). NULL mask: everything trains and every node's
 * backward runs. Returns how many nodes train. */
int mh_graph_backward_needs(const mh_graph *g, const unsigned char *trainable, unsigned char *trains,
                            unsigned char *needs_bwd);

/* Builders append one node reading node `in` and return its id (>= 1) or a negative status with
 * the reason in mh_last_error(). A NULL or empty name gets "<op><id>". Names must be unique. */
int mh_graph_conv2d(mh_graph *g, const char *name, int in, int out_c, int k, int stride, int pad, int groups,
                    int bias);
int mh_graph_linear(mh_graph *g, const char *name, int in, int out_f, int bias);
int mh_graph_batchnorm(mh_graph *g, const char *name, int in, float eps, float momentum);
int mh_graph_relu(mh_graph *g, const char *name, int in);
int mh_graph_relu6(mh_graph *g, const char *name, int in);
int mh_graph_maxpool(mh_graph *g, const char *name, int in, int k, int stride, int pad);
int mh_graph_avgpool(mh_graph *g, const char *name, int in, int k, int stride, int pad);
int mh_graph_gap(mh_graph *g, const char *name, int in);
int mh_graph_add(mh_graph *g, const char *name, int a, int b);
int mh_graph_flatten(mh_graph *g, const char *name, int in);

int mh_graph_find(const mh_graph *g, const char *name); /* node id or -1 */
int mh_graph_output(const mh_graph *g);                 /* the last node: the logits */
int mh_graph_validate(const mh_graph *g); /* one output (the last node) of shape (classes,1,1) etc. */

int64_t mh_graph_param_count(const mh_graph *g);
int64_t mh_node_macs(const mh_graph *g, int node); /* multiply-accumulates per sample, forward */

/* ---- the zoo (MODELS.md) and model files ---------------------------------------------- */
/* Builds a zoo model by name; MH_ERR_INVALID_ARG listing the known names otherwise. */
int mh_zoo_build(mh_graph *g, const char *name);
const char *const *mh_zoo_names(void); /* NULL-terminated */

/* Parses the text model format (docs/MODEL_FORMAT.md) from a buffer; `name` is used in messages
 * ("net.mh:7: conv: unknown key 'kernel'"). */
int mh_model_parse(mh_graph *g, const char *text, size_t len, const char *name);
int mh_model_parse_file(mh_graph *g, const char *path);
/* Writes a graph in the model format (the zoo models become files users can edit). */
int mh_model_write(const mh_graph *g, char **text); /* caller frees *text */

#endif
