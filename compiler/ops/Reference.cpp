// Reference.cpp — the reference kernel of every op: plain loops over doubles
// that follow PyTorch's definitions, written to be obviously right rather
// than fast. The interpreter runs them; the JIT and the emitted C++ are
// tested against them, and gradients are checked with them.
//
// Shapes were checked when the graph was built, so kernels trust them.
#include "ops/Kernels.h"

#include "Random.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <tuple>
#include <stdexcept>

namespace nnc {
namespace {

using namespace kernels;

/// Applies `f` to every element of input 0.
Kernel unary(double (*f)(double, const Attrs &)) {
  return [f](const KernelCall &k) {
    const Tensor &x = in(k, 0);
    for (size_t i = 0; i < x.size(); ++i)
      k.out[i] = f(x[i], k.attrs);
  };
}

/// add and mul: equal shapes, or a batch and one example-shaped tensor that
/// repeats for every example.
Kernel binary(double (*f)(double, double)) {
  return [f](const KernelCall &k) {
    const Tensor &a = in(k, 0), &b = in(k, 1);
    for (size_t i = 0; i < k.out.size(); ++i)
      k.out[i] = f(a[i % a.size()], b[i % b.size()]);
  };
}

void dense(const KernelCall &k) {
  const Tensor &x = in(k, 0), &w = in(k, 1);
  int64_t n = x.dims[0], inF = x.dims[1], outF = w.dims[0];
  bool bias = k.inputs.size() > 2;
  for (int64_t r = 0; r < n; ++r)
    for (int64_t o = 0; o < outF; ++o) {
      double s = bias ? in(k, 2)[static_cast<size_t>(o)] : 0.0;
      for (int64_t i = 0; i < inF; ++i)
        s += x[static_cast<size_t>(r * inF + i)] * w[static_cast<size_t>(o * inF + i)];
      k.out[static_cast<size_t>(r * outF + o)] = s;
    }
}

void copy(const KernelCall &k) { k.out.data = in(k, 0).data; }

void conv2d(const KernelCall &k) {
  const Tensor &x = in(k, 0), &w = in(k, 1);
  Geometry g = geometry(k.attrs);
  int64_t n = x.dims[0], c = x.dims[1], h = x.dims[2], wd = x.dims[3];
  int64_t o = k.out.dims[1], oh = k.out.dims[2], ow = k.out.dims[3];
  bool bias = k.inputs.size() > 2;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t f = 0; f < o; ++f)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          double s = bias ? in(k, 2)[static_cast<size_t>(f)] : 0.0;
          for (int64_t ch = 0; ch < c; ++ch)
            for (int64_t p = 0; p < g.kh; ++p)
              for (int64_t q = 0; q < g.kw; ++q) {
                int64_t y = i * g.sh - g.ph + p, xcol = j * g.sw - g.pw + q;
                if (y < 0 || y >= h || xcol < 0 || xcol >= wd)
                  continue;
                s += x[static_cast<size_t>(((b * c + ch) * h + y) * wd + xcol)] *
                     w[static_cast<size_t>(((f * c + ch) * g.kh + p) * g.kw + q)];
              }
          k.out[static_cast<size_t>(((b * o + f) * oh + i) * ow + j)] = s;
        }
}

/// maxpool2d (padding never wins) and avgpool2d (padding counts as zeros,
/// PyTorch's count_include_pad=True).
Kernel pool(bool max) {
  return [max](const KernelCall &k) {
    const Tensor &x = in(k, 0);
    Geometry g = geometry(k.attrs);
    int64_t n = x.dims[0], c = x.dims[1], h = x.dims[2], wd = x.dims[3];
    int64_t oh = k.out.dims[2], ow = k.out.dims[3];
    for (int64_t b = 0; b < n * c; ++b)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          double acc = max ? -std::numeric_limits<double>::infinity() : 0.0;
          for (int64_t p = 0; p < g.kh; ++p)
            for (int64_t q = 0; q < g.kw; ++q) {
              int64_t y = i * g.sh - g.ph + p, xcol = j * g.sw - g.pw + q;
              if (y < 0 || y >= h || xcol < 0 || xcol >= wd)
                continue;
              double v = x[static_cast<size_t>((b * h + y) * wd + xcol)];
              acc = max ? std::max(acc, v) : acc + v;
            }
          k.out[static_cast<size_t>((b * oh + i) * ow + j)] =
              max ? acc : acc / static_cast<double>(g.kh * g.kw);
        }
  };
}

/// batchnorm over axis 1: the batch's statistics (biased variance) while
/// training, the running statistics when evaluating.
void batchnorm(const KernelCall &k) {
  const Tensor &x = in(k, 0), &gamma = in(k, 1), &beta = in(k, 2);
  const Tensor &runningMean = in(k, 3), &runningVar = in(k, 4);
  double eps = k.attrs.getFloat("eps");
  int64_t n = x.dims[0], c = x.dims[1], inner = elementCount(x.dims) / (n * c);
  for (int64_t ch = 0; ch < c; ++ch) {
    auto at = [&](int64_t b, int64_t s) { return static_cast<size_t>((b * c + ch) * inner + s); };
    double mean = runningMean[static_cast<size_t>(ch)];
    double var = runningVar[static_cast<size_t>(ch)];
    if (k.ctx.training) {
      double sum = 0;
      for (int64_t b = 0; b < n; ++b)
        for (int64_t s = 0; s < inner; ++s)
          sum += x[at(b, s)];
      mean = sum / static_cast<double>(n * inner);
      double sq = 0;
      for (int64_t b = 0; b < n; ++b)
        for (int64_t s = 0; s < inner; ++s)
          sq += (x[at(b, s)] - mean) * (x[at(b, s)] - mean);
      var = sq / static_cast<double>(n * inner);
    }
    double scale = gamma[static_cast<size_t>(ch)] / std::sqrt(var + eps);
    for (int64_t b = 0; b < n; ++b)
      for (int64_t s = 0; s < inner; ++s)
        k.out[at(b, s)] = (x[at(b, s)] - mean) * scale + beta[static_cast<size_t>(ch)];
  }
}

int64_t axisOf(const Attrs &attrs, const char *name, size_t rank) {
  int64_t a = attrs.getInt(name);
  return a < 0 ? a + static_cast<int64_t>(rank) : a;
}

void transpose(const KernelCall &k) {
  const Tensor &x = in(k, 0);
  size_t a = static_cast<size_t>(axisOf(k.attrs, "dim0", x.rank()));
  size_t b = static_cast<size_t>(axisOf(k.attrs, "dim1", x.rank()));
  std::vector<int64_t> inStrides = x.strides(), outStrides = k.out.strides();
  std::vector<int64_t> index(x.rank());
  for (size_t i = 0; i < x.size(); ++i) {
    int64_t rest = static_cast<int64_t>(i), target = 0;
    for (size_t d = 0; d < x.rank(); ++d) {
      index[d] = rest / inStrides[d];
      rest %= inStrides[d];
    }
    std::swap(index[a], index[b]);
    for (size_t d = 0; d < x.rank(); ++d)
      target += index[d] * outStrides[d];
    k.out[static_cast<size_t>(target)] = x[i];
  }
}

/// softmax and log_softmax along an axis, with the maximum subtracted first.
Kernel softmax(bool log) {
  return [log](const KernelCall &k) {
    const Tensor &x = in(k, 0);
    int64_t axis = axisOf(k.attrs, "axis", x.rank());
    int64_t len = x.dims[static_cast<size_t>(axis)];
    int64_t inner = 1;
    for (size_t d = static_cast<size_t>(axis) + 1; d < x.rank(); ++d)
      inner *= x.dims[d];
    int64_t outer = elementCount(x.dims) / (len * inner);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t s = 0; s < inner; ++s) {
        auto at = [&](int64_t i) { return static_cast<size_t>((o * len + i) * inner + s); };
        double m = -std::numeric_limits<double>::infinity();
        for (int64_t i = 0; i < len; ++i)
          m = std::max(m, x[at(i)]);
        double sum = 0;
        for (int64_t i = 0; i < len; ++i)
          sum += std::exp(x[at(i)] - m);
        for (int64_t i = 0; i < len; ++i)
          k.out[at(i)] = log ? x[at(i)] - m - std::log(sum) : std::exp(x[at(i)] - m) / sum;
      }
  };
}

void matmul(const KernelCall &k) {
  const Tensor &a = in(k, 0), &b = in(k, 1);
  int64_t kk = a.dims.back(), n = b.dims.back();
  if (b.rank() == 2) { // a [M…, k] times one shared [k, n]
    int64_t rows = elementCount(a.dims) / kk;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t i = 0; i < kk; ++i)
          s += a[static_cast<size_t>(r * kk + i)] * b[static_cast<size_t>(i * n + j)];
        k.out[static_cast<size_t>(r * n + j)] = s;
      }
    return;
  }
  int64_t m = a.dims[a.rank() - 2];
  int64_t batches = elementCount(a.dims) / (m * kk);
  for (int64_t l = 0; l < batches; ++l)
    for (int64_t r = 0; r < m; ++r)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t i = 0; i < kk; ++i)
          s += a[static_cast<size_t>((l * m + r) * kk + i)] *
               b[static_cast<size_t>((l * kk + i) * n + j)];
        k.out[static_cast<size_t>((l * m + r) * n + j)] = s;
      }
}

/// sum and mean along an axis.
Kernel reduce(bool mean) {
  return [mean](const KernelCall &k) {
    const Tensor &x = in(k, 0);
    int64_t axis = axisOf(k.attrs, "axis", x.rank());
    int64_t len = x.dims[static_cast<size_t>(axis)], inner = 1;
    for (size_t d = static_cast<size_t>(axis) + 1; d < x.rank(); ++d)
      inner *= x.dims[d];
    int64_t outer = elementCount(x.dims) / (len * inner);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t s = 0; s < inner; ++s) {
        double acc = 0;
        for (int64_t i = 0; i < len; ++i)
          acc += x[static_cast<size_t>((o * len + i) * inner + s)];
        k.out[static_cast<size_t>(o * inner + s)] = mean ? acc / static_cast<double>(len) : acc;
      }
  };
}

void concat(const KernelCall &k) {
  int64_t axis = axisOf(k.attrs, "axis", k.out.rank());
  int64_t inner = 1;
  for (size_t d = static_cast<size_t>(axis) + 1; d < k.out.rank(); ++d)
    inner *= k.out.dims[d];
  int64_t outer = elementCount(k.out.dims) / (k.out.dims[static_cast<size_t>(axis)] * inner);
  int64_t offset = 0, total = k.out.dims[static_cast<size_t>(axis)];
  for (const Tensor *t : k.inputs) {
    int64_t len = t->dims[static_cast<size_t>(axis)];
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < len; ++i)
        for (int64_t s = 0; s < inner; ++s)
          k.out[static_cast<size_t>((o * total + offset + i) * inner + s)] =
              (*t)[static_cast<size_t>((o * len + i) * inner + s)];
    offset += len;
  }
}

/// Dropout: each element kept with probability 1 - p and scaled by 1/(1-p),
/// the mask keyed by (seed, layer, step, element) so that it is the same
/// wherever it is computed (the backward pass, compiled loops): the stream
/// is the layer's, the counter the step and the element's index in the whole
/// batch (dropoutIndex), so a share of the batch (data-parallel training)
/// draws the masks its examples get in one process.
/// Identity when evaluating.
void dropout(const KernelCall &k) {
  const Tensor &x = in(k, 0);
  double p = k.attrs.getFloat("p");
  if (!k.ctx.training || p == 0.0) {
    k.out.data = x.data;
    return;
  }
  uint64_t stream = nnc_rt::streamId("dropout/" + k.layer);
  // the element's index in the whole batch (this batch may be a share of it)
  const uint64_t offset =
      x.dims.empty() ? 0 : k.ctx.firstExample * (x.size() / static_cast<uint64_t>(x.dims[0]));
  for (size_t i = 0; i < x.size(); ++i)
    k.out[i] = nnc_rt::uniform01(k.ctx.seed, stream, dropoutIndex(k.ctx.step, offset + i)) >= p
                   ? x[i] / (1.0 - p)
                   : 0.0;
}

/// Standard normal samples by Box–Muller from two uniforms per element.
void randn(const KernelCall &k) {
  uint64_t stream = nnc_rt::streamId("randn/" + k.layer);
  const double twoPi = 6.283185307179586;
  for (size_t i = 0; i < k.out.size(); ++i) {
    double u1 = nnc_rt::uniform01(k.ctx.seed, stream, 2 * i);
    double u2 = nnc_rt::uniform01(k.ctx.seed, stream, 2 * i + 1);
    k.out[i] = std::sqrt(-2.0 * std::log(1.0 - u1)) * std::cos(twoPi * u2);
  }
}

/// Mean over the batch of -log softmax(z)[label] (nn.CrossEntropyLoss).
void crossEntropy(const KernelCall &k) {
  const Tensor &z = in(k, 0), &labels = in(k, 1);
  int64_t n = z.dims[0], c = z.dims[1];
  double total = 0;
  for (int64_t r = 0; r < n; ++r) {
    double m = -std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < c; ++j)
      m = std::max(m, z[static_cast<size_t>(r * c + j)]);
    double sum = 0;
    for (int64_t j = 0; j < c; ++j)
      sum += std::exp(z[static_cast<size_t>(r * c + j)] - m);
    total += m + std::log(sum) - z[static_cast<size_t>(r * c) + label(labels, r, c)];
  }
  k.out[0] = total / static_cast<double>(n);
}

/// Mean over all N·C elements of (y - one_hot(label))² (nn.MSELoss).
void mse(const KernelCall &k) {
  const Tensor &y = in(k, 0), &labels = in(k, 1);
  int64_t n = y.dims[0], c = y.dims[1];
  double total = 0;
  for (int64_t r = 0; r < n; ++r) {
    size_t l = label(labels, r, c);
    for (int64_t j = 0; j < c; ++j) {
      double d = y[static_cast<size_t>(r * c + j)] - (static_cast<size_t>(j) == l ? 1.0 : 0.0);
      total += d * d;
    }
  }
  k.out[0] = total / static_cast<double>(n * c);
}

double gelu(double x, const Attrs &a) {
  if (a.getString("approximate") == "tanh") {
    const double c = std::sqrt(2.0 / 3.141592653589793);
    return 0.5 * x * (1.0 + std::tanh(c * (x + 0.044715 * x * x * x)));
  }
  return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
}

} // namespace

void attachReferenceKernels(std::vector<OpDef> &table) {
  std::map<std::string, Kernel> kernels = {
      {"dense", dense},
      {"flatten", copy},
      {"reshape", copy},
      {"conv2d", conv2d},
      {"maxpool2d", pool(true)},
      {"avgpool2d", pool(false)},
      {"batchnorm", batchnorm},
      {"transpose", transpose},
      {"relu", unary([](double x, const Attrs &) { return x > 0 ? x : 0.0; })},
      {"sigmoid", unary([](double x, const Attrs &) { return 1.0 / (1.0 + std::exp(-x)); })},
      {"tanh", unary([](double x, const Attrs &) { return std::tanh(x); })},
      {"leaky_relu",
       unary([](double x, const Attrs &a) { return x > 0 ? x : a.getFloat("alpha") * x; })},
      {"gelu", unary(gelu)},
      {"neg", unary([](double x, const Attrs &) { return -x; })},
      {"dropout", dropout},
      {"softmax", softmax(false)},
      {"log_softmax", softmax(true)},
      {"sum", reduce(false)},
      {"mean", reduce(true)},
      {"add", binary([](double a, double b) { return a + b; })},
      {"mul", binary([](double a, double b) { return a * b; })},
      {"matmul", matmul},
      {"concat", concat},
      {"randn", randn},
      {"zeros", [](const KernelCall &k) { std::fill(k.out.data.begin(), k.out.data.end(), 0.0); }},
      {"ones", [](const KernelCall &k) { std::fill(k.out.data.begin(), k.out.data.end(), 1.0); }},
      {"cross_entropy", crossEntropy},
      {"mse", mse},
  };
  for (OpDef &op : table) {
    if (op.kind == OpKind::Internal)
      continue; // they bring their own (ops/InternalOps.cpp)
    auto it = kernels.find(op.name);
    if (it == kernels.end())
      throw std::logic_error("internal error: op " + op.name + " has no reference kernel");
    op.reference = it->second;
  }
}

} // namespace nnc
