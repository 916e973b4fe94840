// Settings.h — schemas of everything in a .nn file that is not a layer:
// optimizers, learning-rate schedules, and the `data` and `train` blocks.
//
// Like the op table, each row is the one place that names a setting's
// attributes, their types, defaults and ranges; Sema reads only these rows.
#pragma once

#include "ops/Attr.h"

#include <string>
#include <string_view>
#include <vector>

namespace nnc {

/// An optimizer or a schedule: `adam(lr=1e-3)`, `step(every=5)`.
struct SettingDef {
  std::string name;
  std::vector<AttrSpec> attrs;
  std::string summary;
};

const std::vector<SettingDef> &optimizerTable();
const std::vector<SettingDef> &scheduleTable();
const SettingDef *findSetting(const std::vector<SettingDef> &table, std::string_view name);

/// An entry of a configuration block. `batch 64` is the entry `batch` with
/// its first attribute set to 64; an entry may hold entries of its own
/// (`augment { flip }`).
struct ConfigItemDef {
  std::string name;
  std::vector<AttrSpec> attrs;
  std::string summary;
  /// When true the entry is absent unless written; when false an absent
  /// entry takes its attributes' defaults.
  bool optional = false;
  std::vector<ConfigItemDef> children;
};

/// A configuration block: `data { … }`, `train { … }`.
struct ConfigBlockDef {
  std::string keyword;
  std::vector<ConfigItemDef> items;
  std::string summary;
  bool takesLabel = false; ///< `data mnist { … }`
};

const std::vector<ConfigBlockDef> &configBlockTable();
const ConfigBlockDef *findConfigBlock(std::string_view keyword);

/// The top-level declaration keywords other than `model`, for hints.
std::vector<std::string> declarationKeywords();

} // namespace nnc
