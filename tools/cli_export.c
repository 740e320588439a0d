/* `mandheling export`: a checkpoint's (or weights') inference graph as an ONNX file, for ONNX
 * Runtime and the other inference engines that read ONNX. */
#include <string.h>

#include "cli.h"

int cmd_export(int argc, char **argv) {
  const char *load = NULL, *init = NULL, *model = NULL, *onnx = NULL;
  const cli_opt opts[] = {{"--load", OPT_STR, &load, "checkpoint to export (or --init)"},
                          {"--init", OPT_STR, &init, "weights only (a checkpoint's or a PyTorch state_dict's), with --model"},
                          {"--model", OPT_STR, &model, "zoo name or model file (default: the checkpoint's own; alone: freshly initialised)"},
                          {"--onnx", OPT_STR, &onnx, "the ONNX file to write (required)"},
                          {NULL, 0, NULL, NULL}};
  int r = cli_parse("export", "--load CKPT --onnx FILE.onnx", opts, argc, argv);
  if (r) return r == 1 ? 0 : r;
  if ((load && init) || (!load && !init && !model) || !onnx) {
    fprintf(stderr, "mandheling export: give --onnx FILE and --load CKPT, --init WEIGHTS (with --model), or --model "
                    "alone (its fresh initialisation)\n");
    return 2;
  }
  char precision[16] = "fp32";
  if (load && mh_checkpoint_precision(load, precision, sizeof precision)) return cli_fail("export");
  mh_train_config cfg;
  mh_train_config_default(&cfg);
  cfg.precision = precision;
  cfg.threads = 1;
  mh_model *m = NULL;
  mh_trainer *t = NULL;
  int st = model ? mh_model_create(&m, model, 1) : mh_checkpoint_model(load ? load : init, 1, &m);
  if (!st && init) st = mh_model_load_weights(m, init);
  if (!st) st = mh_trainer_create(&t, m, &cfg); /* a niti checkpoint's int8 weights need the trainer's setup */
  if (!st && load) st = mh_trainer_load(t, load);
  int integer = !strcmp(precision, "niti");
  if (!st) st = mh_model_export_onnx(m, integer, onnx);
  int rc = st ? cli_fail("export") : 0;
  if (!st)
    printf("%s: %s (%s) as ONNX, opset 13, dynamic batch%s\n", onnx, mh_model_name(m), precision,
           integer ? "; niti: int8 weights dequantised to float (q * 2^exponent), the integer rescaling between layers "
                     "not represented, so its logits differ slightly from predict's"
                   : !strcmp(precision, "int8") ? "; int8: the FP32 master weights (the int8 GEMMs' rounding is not represented)"
                                                : "");
  mh_trainer_free(t);
  mh_model_free(m);
  return rc;
}
