// Summary.cpp — the table printed by `--check`.
#include "driver/Summary.h"

#include "support/Text.h"

#include <fmt/format.h>

#include <algorithm>

namespace nnc {

namespace {

std::string bytes(int64_t n) {
  if (n < 1024)
    return fmt::format("{} B", n);
  if (n < 1024 * 1024)
    return fmt::format("{:.1f} KiB", static_cast<double>(n) / 1024);
  return fmt::format("{:.1f} MiB", static_cast<double>(n) / (1024.0 * 1024.0));
}

std::string dataLine(const DataSpec &d) {
  if (!d.declared)
    return "none declared";
  std::vector<std::string> parts;
  if (!d.label.empty())
    parts.push_back(d.label + ":");
  parts.push_back(d.path ? "path \"" + *d.path + "\"" : "no path (give --data DIR)");
  parts.push_back(fmt::format("batch {}", d.batch));
  parts.push_back(d.shuffle ? "shuffled" : "not shuffled");
  parts.push_back(d.mean ? fmt::format("normalize(mean={}, std={})", *d.mean, *d.std)
                         : "pixels scaled to [0, 1]");
  if (d.validation > 0)
    parts.push_back(fmt::format("validation {}", d.validation));
  std::string out;
  for (const std::string &p : parts)
    out += (out.empty() || out.back() == ':' ? (out.empty() ? "" : " ") : ", ") + p;
  return out;
}

std::string augmentLine(const Augment &a) {
  std::string out;
  for (const std::optional<Applied> *x : {&a.crop, &a.shift, &a.rotate, &a.flip})
    if (*x)
      out += (out.empty() ? "" : ", ") + (*x)->str();
  return out.empty() ? "none" : out;
}

} // namespace

void printSummary(const Program &program, std::ostream &out) {
  const Model &m = program.model;
  struct Row {
    std::string layer, op, inputs, shape, params;
  };
  std::vector<Row> rows;
  rows.push_back({"Layer", "Op", "Inputs", "Output shape", "Params"});
  for (int v : m.inputs)
    rows.push_back({m.values[v].name, "input", "", m.values[v].shape.str(), "0"});
  for (const Layer &layer : m.layers) {
    std::string inputs;
    for (int v : layer.inputs) {
      const ModelValue &value = m.values[v];
      std::string name = value.producer >= 0 ? m.layers[value.producer].name : value.name;
      inputs += (inputs.empty() ? "" : ", ") + name;
    }
    int64_t params = 0;
    for (const ParamInfo &p : layer.params)
      if (p.trainable)
        params += p.count;
    rows.push_back({layer.name, layer.op->name, inputs, m.values[layer.output].shape.str(),
                    withThousands(params)});
  }
  size_t w[5] = {0, 0, 0, 0, 0};
  for (const Row &r : rows) {
    w[0] = std::max(w[0], r.layer.size());
    w[1] = std::max(w[1], r.op.size());
    w[2] = std::max(w[2], r.inputs.size());
    w[3] = std::max(w[3], r.shape.size());
    w[4] = std::max(w[4], r.params.size());
  }
  size_t total = w[0] + w[1] + w[2] + w[3] + w[4] + 8;
  auto printRow = [&](const Row &r) {
    out << fmt::format("{:<{}}  {:<{}}  {:<{}}  {:<{}}  {:>{}}\n", r.layer, w[0], r.op, w[1],
                       r.inputs, w[2], r.shape, w[3], r.params, w[4]);
  };
  out << "Model " << m.name << " (" << program.path << ")\n";
  out << std::string(total, '=') << "\n";
  printRow(rows[0]);
  out << std::string(total, '-') << "\n";
  for (size_t i = 1; i < rows.size(); ++i)
    printRow(rows[i]);
  out << std::string(total, '=') << "\n";
  int64_t count = m.paramCount();
  out << "Total params: " << withThousands(count) << " (" << bytes(count * 4)
      << " as float32)\n";
  if (int64_t state = m.stateCount(); state > 0)
    out << "Running statistics: " << withThousands(state) << " values, not trained\n";
  out << "Output: " << m.values[m.output].shape.str() << "\n\n";

  auto setting = [&](const char *key, const std::string &value) {
    out << fmt::format("{:<10} {}\n", key, value);
  };
  setting("Loss", program.loss.str());
  setting("Optimizer", program.optimizer.str());
  setting("Schedule", program.schedule.str() + " per epoch");
  setting("Data", dataLine(program.data));
  if (program.data.declared)
    setting("Augment", augmentLine(program.data.augment));
  setting("Train", fmt::format("epochs {}, seed {}", program.train.epochs, program.train.seed));
}

} // namespace nnc
