// Settings.cpp — the rows of the optimizer, schedule and configuration tables.
#include "train/Settings.h"

namespace nnc {
namespace {

AttrSpec warmup() {
  return floatAttr("warmup", 0.0, "epochs of linear warm-up from 0 to the base rate",
                   atLeast(0));
}

std::vector<AttrSpec> adamAttrs(double weightDecay) {
  return {floatAttr("lr", 1e-3, "learning rate", above(0)),
          floatAttr("beta1", 0.9, "decay of the first-moment average", atLeast(0), below(1)),
          floatAttr("beta2", 0.999, "decay of the second-moment average", atLeast(0), below(1)),
          floatAttr("eps", 1e-8, "added to the denominator", atLeast(0)),
          floatAttr("weight_decay", weightDecay, "weight decay", atLeast(0))};
}

} // namespace

const std::vector<SettingDef> &optimizerTable() {
  static const std::vector<SettingDef> table = {
      {"sgd",
       {required(floatAttr("lr", {}, "learning rate", above(0))),
        floatAttr("momentum", 0.0, "momentum factor", atLeast(0)),
        floatAttr("dampening", 0.0, "dampening for momentum", atLeast(0), atMost(1)),
        boolAttr("nesterov", false, "Nesterov momentum"),
        floatAttr("weight_decay", 0.0, "L2 penalty added to the gradient", atLeast(0))},
       "stochastic gradient descent, as torch.optim.SGD"},
      {"adam", adamAttrs(0.0), "Adam, as torch.optim.Adam (L2 penalty in the gradient)"},
      {"adamw", adamAttrs(0.01), "AdamW, as torch.optim.AdamW (decoupled weight decay)"},
  };
  return table;
}

const std::vector<SettingDef> &scheduleTable() {
  static const std::vector<SettingDef> table = {
      {"constant", {warmup()}, "the base learning rate throughout"},
      {"step",
       {required(intAttr("every", {}, "epochs between decays", atLeast(1))),
        floatAttr("gamma", 0.1, "factor applied at each decay", above(0)), warmup()},
       "multiply by gamma every `every` epochs, as StepLR"},
      {"exponential",
       {required(floatAttr("gamma", {}, "factor applied each epoch", above(0))), warmup()},
       "multiply by gamma every epoch, as ExponentialLR"},
      {"cosine",
       {floatAttr("min_lr", 0.0, "the rate reached at the last epoch", atLeast(0)), warmup()},
       "cosine annealing from the base rate to min_lr over the epochs, as CosineAnnealingLR"},
  };
  return table;
}

const SettingDef *findSetting(const std::vector<SettingDef> &table, std::string_view name) {
  for (const SettingDef &def : table)
    if (def.name == name)
      return &def;
  return nullptr;
}

const std::vector<ConfigBlockDef> &configBlockTable() {
  static const std::vector<ConfigBlockDef> table = {
      {"data",
       {
           {"path",
            {required(stringAttr("dir", {}, "directory of IDX files"))},
            "directory holding the MNIST-format IDX files, relative to the .nn file",
            true},
           {"batch",
            {intAttr("size", 64, "examples per step", atLeast(1))},
            "examples per training step",
            false},
           {"shuffle",
            {boolAttr("enabled", true, "shuffle every epoch")},
            "shuffle the training set every epoch",
            true},
           {"normalize",
            {required(floatAttr("mean", {}, "subtracted from each pixel")),
             required(floatAttr("std", {}, "each pixel is divided by it", above(0)))},
            "(pixel - mean) / std, after scaling pixels to [0, 1]",
            true},
           {"validation",
            {required(floatAttr("fraction", {}, "share of the training set held out", atLeast(0),
                                below(1)))},
            "hold out this fraction of the training set for validation",
            true},
           {"augment",
            {},
            "random transformations of training images",
            true,
            {
                {"crop",
                 {required(intAttr("size", {}, "side of the crop", atLeast(1))),
                  intAttr("padding", 0, "zero padding added first on every side", atLeast(0))},
                 "random crop after zero padding",
                 true},
                {"shift",
                 {required(intAttr("pixels", {}, "largest shift in each direction", atLeast(0)))},
                 "random translation",
                 true},
                {"rotate",
                 {required(floatAttr("degrees", {}, "largest rotation either way", atLeast(0),
                                     atMost(180)))},
                 "random rotation with bilinear sampling",
                 true},
                {"flip",
                 {floatAttr("p", 0.5, "probability of a horizontal flip", atLeast(0),
                            atMost(1))},
                 "random horizontal flip",
                 true},
            }},
       },
       "where the examples come from and how they are fed",
       true},
      {"train",
       {
           {"epochs",
            {intAttr("count", 1, "passes over the training set", atLeast(1))},
            "passes over the training set",
            false},
           {"seed",
            {intAttr("value", 0, "seed for initialization, shuffling and dropout",
                              atLeast(0))},
            "seed for every random choice",
            false},
       },
       "how long to train, and the seed",
       false},
  };
  return table;
}

const ConfigBlockDef *findConfigBlock(std::string_view keyword) {
  for (const ConfigBlockDef &def : configBlockTable())
    if (def.keyword == keyword)
      return &def;
  return nullptr;
}

std::vector<std::string> declarationKeywords() {
  return {"model", "data", "train", "loss", "optimizer", "schedule"};
}

} // namespace nnc
