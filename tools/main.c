/* `mandheling`: train, evaluate, describe and benchmark models from the command line.
 * Dispatches to one file per subcommand. */
#include <string.h>

#include "cli.h"

static void usage(FILE *f) {
  fprintf(f,
          "mandheling %s: on-device mixed-precision DNN training\n\n"
          "usage: mandheling COMMAND [options]   (mandheling COMMAND --help for its options)\n\n"
          "commands:\n"
          "  train   train a model on a data set (Fashion-MNIST/MNIST IDX or CIFAR-10 binary)\n"
          "  eval    evaluate a checkpoint on a data set's test split\n"
          "  predict class predictions of a checkpoint for a test split or an images file, as CSV\n"
          "  export  a checkpoint's inference graph as an ONNX file\n"
          "  info    layers, shapes, parameters, MACs and training memory of a model\n"
          "  bench   median time of a full training step on synthetic data\n"
          "  plan    CPU-DSP placement of a training step from a device profile (modelled)\n",
          MH_VERSION_STRING);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *c = argv[1];
  if (strcmp(c, "train") == 0) return cmd_train(argc - 2, argv + 2);
  if (strcmp(c, "eval") == 0) return cmd_eval(argc - 2, argv + 2);
  if (strcmp(c, "info") == 0) return cmd_info(argc - 2, argv + 2);
  if (strcmp(c, "bench") == 0) return cmd_bench(argc - 2, argv + 2);
  if (strcmp(c, "plan") == 0) return cmd_plan(argc - 2, argv + 2);
  if (strcmp(c, "predict") == 0) return cmd_predict(argc - 2, argv + 2);
  if (strcmp(c, "export") == 0) return cmd_export(argc - 2, argv + 2);
  if (strcmp(c, "--help") == 0 || strcmp(c, "-h") == 0 || strcmp(c, "help") == 0) {
    usage(stdout);
    return 0;
  }
  if (strcmp(c, "--version") == 0) {
    printf("mandheling %s\n", MH_VERSION_STRING);
    return 0;
  }
  fprintf(stderr, "mandheling: unknown command '%s'\n\n", c);
  usage(stderr);
  return 2;
}
