// InternalOps.cpp — rows of the op table that only the compiler creates:
// the pieces gradient rules are written with (relu_grad, conv2d_grad_input,
// batch_sum, …) and the scalar plumbing of a loss (sum_all, fill). Each has
// a shape rule and a reference kernel like any other row; none can be
// written in a .nn file.
#include "ops/Kernels.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <tuple>

namespace nnc {
namespace {

using namespace kernels;

ShapeError fail(std::string message) { return ShapeError{std::move(message), ""}; }

/// The output has the shape of input `i`.
std::function<ShapeResult(const ShapeQuery &)> like(size_t i) {
  return [i](const ShapeQuery &q) -> ShapeResult { return q.inputs.at(i); };
}

ShapeResult sameAsFirstTwo(const ShapeQuery &q) {
  if (!(q.inputs[0] == q.inputs[1]))
    return fail(q.layer + ": gradient and value shapes differ");
  return q.inputs[0];
}

std::vector<int64_t> tail(const Shape &s) {
  return s.isBatched() ? std::vector<int64_t>(s.dims.begin() + 1, s.dims.end()) : s.dims;
}

// ---- elementwise derivatives: dy times f'(x), or f' from the saved output y ----

template <typename F> void pointwise(const KernelCall &k, F f) {
  const Tensor &dy = in(k, 0), &v = in(k, 1);
  for (size_t i = 0; i < dy.size(); ++i)
    k.out[i] = f(dy[i], v[i]);
}

void geluGrad(const KernelCall &k) {
  bool tanhForm = k.attrs.getString("approximate") == "tanh";
  pointwise(k, [tanhForm](double dy, double x) {
    if (tanhForm) { // d/dx 0.5x(1 + tanh(u)), u = c(x + 0.044715x³)
      const double c = std::sqrt(2.0 / 3.141592653589793);
      double u = c * (x + 0.044715 * x * x * x), t = std::tanh(u);
      return dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x));
    }
    // d/dx xΦ(x) = Φ(x) + xφ(x)
    double cdf = 0.5 * (1 + std::erf(x / std::sqrt(2.0)));
    double pdf = std::exp(-0.5 * x * x) / std::sqrt(2 * 3.141592653589793);
    return dy * (cdf + x * pdf);
  });
}

/// softmax: dx = y (dy - Σ dy·y); log_softmax: dx = dy - exp(y) Σ dy, both
/// along the axis.
Kernel softmaxGrad(bool log) {
  return [log](const KernelCall &k) {
    const Tensor &dy = in(k, 0), &y = in(k, 1);
    int64_t axis = k.attrs.getInt("axis");
    if (axis < 0)
      axis += static_cast<int64_t>(y.rank());
    int64_t len = y.dims[static_cast<size_t>(axis)], inner = 1;
    for (size_t d = static_cast<size_t>(axis) + 1; d < y.rank(); ++d)
      inner *= y.dims[d];
    int64_t outer = elementCount(y.dims) / (len * inner);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t s = 0; s < inner; ++s) {
        auto at = [&](int64_t i) { return static_cast<size_t>((o * len + i) * inner + s); };
        double acc = 0;
        for (int64_t i = 0; i < len; ++i)
          acc += log ? dy[at(i)] : dy[at(i)] * y[at(i)];
        for (int64_t i = 0; i < len; ++i)
          k.out[at(i)] = log ? dy[at(i)] - std::exp(y[at(i)]) * acc : y[at(i)] * (dy[at(i)] - acc);
      }
  };
}

// ---- reductions that undo broadcasting ----

/// [N, …] -> […]: sums over the batch.
ShapeResult batchSumShape(const ShapeQuery &q) { return Shape{tail(q.inputs[0])}; }

void batchSum(const KernelCall &k) {
  const Tensor &t = in(k, 0);
  std::fill(k.out.data.begin(), k.out.data.end(), 0.0);
  for (size_t i = 0; i < t.size(); ++i)
    k.out[i % k.out.size()] += t[i];
}

/// [N, C, …] -> [C]: sums over everything but the channels.
ShapeResult channelSumShape(const ShapeQuery &q) { return Shape{{q.inputs[0].dims[1]}}; }

void channelSum(const KernelCall &k) {
  const Tensor &t = in(k, 0);
  int64_t n = t.dims[0], c = t.dims[1], inner = elementCount(t.dims) / (n * c);
  std::fill(k.out.data.begin(), k.out.data.end(), 0.0);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t s = 0; s < inner; ++s)
        k.out[static_cast<size_t>(ch)] += t[static_cast<size_t>((b * c + ch) * inner + s)];
}

/// contract(a, b): [L…, k] and [L…, n] -> [k, n], Σ over all leading axes of
/// a[…, k]·b[…, n]: the weight gradient of dense and of a shared matmul.
ShapeResult contractShape(const ShapeQuery &q) {
  return Shape{{q.inputs[0].dims.back(), q.inputs[1].dims.back()}};
}

void contract(const KernelCall &k) {
  const Tensor &a = in(k, 0), &b = in(k, 1);
  int64_t ka = a.dims.back(), nb = b.dims.back(), rows = elementCount(a.dims) / ka;
  for (int64_t i = 0; i < ka; ++i)
    for (int64_t j = 0; j < nb; ++j) {
      double s = 0;
      for (int64_t r = 0; r < rows; ++r)
        s += a[static_cast<size_t>(r * ka + i)] * b[static_cast<size_t>(r * nb + j)];
      k.out[static_cast<size_t>(i * nb + j)] = s;
    }
}

/// slice[axis, start, length]: the gradient of concat for one input.
ShapeResult sliceShape(const ShapeQuery &q) {
  Shape s = q.inputs[0];
  int64_t axis = q.attrs.getInt("axis");
  if (axis < 0)
    axis += static_cast<int64_t>(s.rank());
  s.dims[static_cast<size_t>(axis)] = q.attrs.getInt("length");
  return s;
}

void slice(const KernelCall &k) {
  const Tensor &t = in(k, 0);
  int64_t axis = k.attrs.getInt("axis");
  if (axis < 0)
    axis += static_cast<int64_t>(t.rank());
  int64_t start = k.attrs.getInt("start"), len = k.attrs.getInt("length");
  int64_t total = t.dims[static_cast<size_t>(axis)], inner = 1;
  for (size_t d = static_cast<size_t>(axis) + 1; d < t.rank(); ++d)
    inner *= t.dims[d];
  int64_t outer = elementCount(t.dims) / (total * inner);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < len; ++i)
      for (int64_t s = 0; s < inner; ++s)
        k.out[static_cast<size_t>((o * len + i) * inner + s)] =
            t[static_cast<size_t>((o * total + start + i) * inner + s)];
}

// ---- convolution and pooling ----

/// conv2d_grad_input(dy, W, x): the input gradient, the shape of x.
void conv2dGradInput(const KernelCall &k) {
  const Tensor &dy = in(k, 0), &w = in(k, 1);
  Geometry g = geometry(k.attrs);
  int64_t n = k.out.dims[0], c = k.out.dims[1], h = k.out.dims[2], wd = k.out.dims[3];
  int64_t o = dy.dims[1], oh = dy.dims[2], ow = dy.dims[3];
  std::fill(k.out.data.begin(), k.out.data.end(), 0.0);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t f = 0; f < o; ++f)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          double d = dy[static_cast<size_t>(((b * o + f) * oh + i) * ow + j)];
          for (int64_t ch = 0; ch < c; ++ch)
            for (int64_t p = 0; p < g.kh; ++p)
              for (int64_t q = 0; q < g.kw; ++q) {
                int64_t y = i * g.sh - g.ph + p, x = j * g.sw - g.pw + q;
                if (y < 0 || y >= h || x < 0 || x >= wd)
                  continue;
                k.out[static_cast<size_t>(((b * c + ch) * h + y) * wd + x)] +=
                    d * w[static_cast<size_t>(((f * c + ch) * g.kh + p) * g.kw + q)];
              }
        }
}

/// conv2d_grad_weight(dy, x, W): the weight gradient, the shape of W.
void conv2dGradWeight(const KernelCall &k) {
  const Tensor &dy = in(k, 0), &xin = in(k, 1);
  Geometry g = geometry(k.attrs);
  int64_t n = xin.dims[0], c = xin.dims[1], h = xin.dims[2], wd = xin.dims[3];
  int64_t o = dy.dims[1], oh = dy.dims[2], ow = dy.dims[3];
  std::fill(k.out.data.begin(), k.out.data.end(), 0.0);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t f = 0; f < o; ++f)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          double d = dy[static_cast<size_t>(((b * o + f) * oh + i) * ow + j)];
          for (int64_t ch = 0; ch < c; ++ch)
            for (int64_t p = 0; p < g.kh; ++p)
              for (int64_t q = 0; q < g.kw; ++q) {
                int64_t y = i * g.sh - g.ph + p, x = j * g.sw - g.pw + q;
                if (y < 0 || y >= h || x < 0 || x >= wd)
                  continue;
                k.out[static_cast<size_t>(((f * c + ch) * g.kh + p) * g.kw + q)] +=
                    d * xin[static_cast<size_t>(((b * c + ch) * h + y) * wd + x)];
              }
        }
}

/// maxpool2d_grad(dy, x): each window's gradient goes to its first maximum
/// (as PyTorch's max_pool2d). avgpool2d_grad(dy, x): spread evenly, padding
/// included in the count.
Kernel poolGrad(bool max) {
  return [max](const KernelCall &k) {
    const Tensor &dy = in(k, 0), &x = in(k, 1);
    Geometry g = geometry(k.attrs);
    int64_t n = x.dims[0], c = x.dims[1], h = x.dims[2], wd = x.dims[3];
    int64_t oh = dy.dims[2], ow = dy.dims[3];
    std::fill(k.out.data.begin(), k.out.data.end(), 0.0);
    for (int64_t b = 0; b < n * c; ++b)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          double d = dy[static_cast<size_t>((b * oh + i) * ow + j)];
          size_t best = SIZE_MAX;
          for (int64_t p = 0; p < g.kh; ++p)
            for (int64_t q = 0; q < g.kw; ++q) {
              int64_t y = i * g.sh - g.ph + p, xc = j * g.sw - g.pw + q;
              if (y < 0 || y >= h || xc < 0 || xc >= wd)
                continue;
              size_t at = static_cast<size_t>((b * h + y) * wd + xc);
              if (!max)
                k.out[at] += d / static_cast<double>(g.kh * g.kw);
              else if (best == SIZE_MAX || x[at] > x[best])
                best = at;
            }
          if (max && best != SIZE_MAX)
            k.out[best] += d;
        }
  };
}

// ---- batchnorm ----

/// The statistics batchnorm normalized with: the batch's (training) or the
/// running ones.
struct Stats {
  std::vector<double> mean, invStd;
};

Stats batchStats(const Tensor &x, const Tensor &runningMean, const Tensor &runningVar,
                 double eps, bool training) {
  int64_t n = x.dims[0], c = x.dims[1], inner = elementCount(x.dims) / (n * c);
  Stats s{std::vector<double>(static_cast<size_t>(c)), std::vector<double>(static_cast<size_t>(c))};
  for (int64_t ch = 0; ch < c; ++ch) {
    double mean = runningMean[static_cast<size_t>(ch)], var = runningVar[static_cast<size_t>(ch)];
    if (training) {
      double sum = 0, sq = 0;
      for (int64_t b = 0; b < n; ++b)
        for (int64_t i = 0; i < inner; ++i)
          sum += x[static_cast<size_t>((b * c + ch) * inner + i)];
      mean = sum / static_cast<double>(n * inner);
      for (int64_t b = 0; b < n; ++b)
        for (int64_t i = 0; i < inner; ++i) {
          double d = x[static_cast<size_t>((b * c + ch) * inner + i)] - mean;
          sq += d * d;
        }
      var = sq / static_cast<double>(n * inner);
    }
    s.mean[static_cast<size_t>(ch)] = mean;
    s.invStd[static_cast<size_t>(ch)] = 1.0 / std::sqrt(var + eps);
  }
  return s;
}

/// batchnorm_grad_input(dy, x, γ, running_mean, running_var). Training:
/// dx = γ/σ (dy - mean(dy) - x̂ mean(dy x̂)); evaluation: dx = γ/σ dy.
void batchnormGradInput(const KernelCall &k) {
  const Tensor &dy = in(k, 0), &x = in(k, 1), &gamma = in(k, 2);
  Stats s = batchStats(x, in(k, 3), in(k, 4), k.attrs.getFloat("eps"), k.ctx.training);
  int64_t n = x.dims[0], c = x.dims[1], inner = elementCount(x.dims) / (n * c);
  double count = static_cast<double>(n * inner);
  for (int64_t ch = 0; ch < c; ++ch) {
    auto at = [&](int64_t b, int64_t i) { return static_cast<size_t>((b * c + ch) * inner + i); };
    double m = s.mean[static_cast<size_t>(ch)], r = s.invStd[static_cast<size_t>(ch)];
    double scale = gamma[static_cast<size_t>(ch)] * r;
    double sumDy = 0, sumDyXhat = 0;
    for (int64_t b = 0; b < n; ++b)
      for (int64_t i = 0; i < inner; ++i) {
        sumDy += dy[at(b, i)];
        sumDyXhat += dy[at(b, i)] * (x[at(b, i)] - m) * r;
      }
    for (int64_t b = 0; b < n; ++b)
      for (int64_t i = 0; i < inner; ++i) {
        double xhat = (x[at(b, i)] - m) * r;
        k.out[at(b, i)] = k.ctx.training
                              ? scale * (dy[at(b, i)] - sumDy / count - xhat * sumDyXhat / count)
                              : scale * dy[at(b, i)];
      }
  }
}

/// batchnorm_grad_weight(dy, x, running_mean, running_var): Σ dy·x̂ per channel.
void batchnormGradWeight(const KernelCall &k) {
  const Tensor &dy = in(k, 0), &x = in(k, 1);
  Stats s = batchStats(x, in(k, 2), in(k, 3), k.attrs.getFloat("eps"), k.ctx.training);
  int64_t n = x.dims[0], c = x.dims[1], inner = elementCount(x.dims) / (n * c);
  for (int64_t ch = 0; ch < c; ++ch) {
    double acc = 0;
    for (int64_t b = 0; b < n; ++b)
      for (int64_t i = 0; i < inner; ++i) {
        size_t at = static_cast<size_t>((b * c + ch) * inner + i);
        acc += dy[at] * (x[at] - s.mean[static_cast<size_t>(ch)]) * s.invStd[static_cast<size_t>(ch)];
      }
    k.out[static_cast<size_t>(ch)] = acc;
  }
}

// ---- losses and scalars ----

/// cross_entropy_grad(dL, z, labels) = dL (softmax(z) - one_hot) / N.
void crossEntropyGrad(const KernelCall &k) {
  double dl = in(k, 0)[0];
  const Tensor &z = in(k, 1), &labels = in(k, 2);
  int64_t n = z.dims[0], c = z.dims[1];
  for (int64_t r = 0; r < n; ++r) {
    double m = z[static_cast<size_t>(r * c)];
    for (int64_t j = 1; j < c; ++j)
      m = std::max(m, z[static_cast<size_t>(r * c + j)]);
    double sum = 0;
    for (int64_t j = 0; j < c; ++j)
      sum += std::exp(z[static_cast<size_t>(r * c + j)] - m);
    size_t l = label(labels, r, c);
    for (int64_t j = 0; j < c; ++j) {
      double p = std::exp(z[static_cast<size_t>(r * c + j)] - m) / sum;
      k.out[static_cast<size_t>(r * c + j)] =
          dl * (p - (static_cast<size_t>(j) == l ? 1.0 : 0.0)) / static_cast<double>(n);
    }
  }
}

/// mse_grad(dL, y, labels) = dL · 2 (y - one_hot) / (N·C).
void mseGrad(const KernelCall &k) {
  double dl = in(k, 0)[0];
  const Tensor &y = in(k, 1), &labels = in(k, 2);
  int64_t n = y.dims[0], c = y.dims[1];
  for (int64_t r = 0; r < n; ++r) {
    size_t l = label(labels, r, c);
    for (int64_t j = 0; j < c; ++j) {
      double t = static_cast<size_t>(j) == l ? 1.0 : 0.0;
      k.out[static_cast<size_t>(r * c + j)] =
          dl * 2.0 * (y[static_cast<size_t>(r * c + j)] - t) / static_cast<double>(n * c);
    }
  }
}

OpDef internal(std::string name, int arity, std::vector<AttrSpec> attrs, std::string summary,
               std::function<ShapeResult(const ShapeQuery &)> shape,
               std::function<void(const KernelCall &)> kernel) {
  OpDef op{std::move(name), OpKind::Internal, arity, std::move(attrs), std::move(summary),
           std::move(shape), nullptr, std::move(kernel), nullptr};
  return op;
}

AttrSpec axisAttr() { return intAttr("axis", -1, "the axis"); }

/// Elementwise on two inputs of equal shape, or one of them a scalar.
ShapeResult broadcastShape(const ShapeQuery &q) {
  const Shape &a = q.inputs[0], &b = q.inputs[1];
  if (a == b || b.rank() == 0)
    return a;
  if (a.rank() == 0)
    return b;
  return fail(q.layer + ": shapes " + a.str() + " and " + b.str() + " do not broadcast");
}

Kernel binaryKernel(double (*f)(double, double)) {
  return [f](const KernelCall &k) {
    const Tensor &a = in(k, 0), &b = in(k, 1);
    for (size_t i = 0; i < k.out.size(); ++i)
      k.out[i] = f(a[i % a.size()], b[i % b.size()]);
  };
}

Kernel unaryKernel(double (*f)(double, const Attrs &)) {
  return [f](const KernelCall &k) {
    for (size_t i = 0; i < k.out.size(); ++i)
      k.out[i] = f(in(k, 0)[i], k.attrs);
  };
}

/// Per-channel statistics of [N, C, …]: the mean, and the unbiased variance
/// that batchnorm's running variance tracks (as PyTorch does).
Kernel channelStat(bool variance) {
  return [variance](const KernelCall &k) {
    const Tensor &x = in(k, 0);
    int64_t n = x.dims[0], c = x.dims[1], inner = elementCount(x.dims) / (n * c);
    double count = static_cast<double>(n * inner);
    for (int64_t ch = 0; ch < c; ++ch) {
      double sum = 0, sq = 0;
      for (int64_t b = 0; b < n; ++b)
        for (int64_t i = 0; i < inner; ++i)
          sum += x[static_cast<size_t>((b * c + ch) * inner + i)];
      double mean = sum / count;
      for (int64_t b = 0; b < n; ++b)
        for (int64_t i = 0; i < inner; ++i) {
          double d = x[static_cast<size_t>((b * c + ch) * inner + i)] - mean;
          sq += d * d;
        }
      k.out[static_cast<size_t>(ch)] = variance ? sq / std::max(1.0, count - 1) : mean;
    }
  };
}

} // namespace

void addInternalOps(std::vector<OpDef> &t) {
  auto fill = [](const KernelCall &k) {
    std::fill(k.out.data.begin(), k.out.data.end(), k.attrs.getFloat("value"));
  };
  t.push_back(internal("fill", 0,
                       {required(intListAttr("shape", {}, "the shape; [] for a scalar")),
                        floatAttr("value", 0.0, "the value")},
                       "a constant tensor",
                       [](const ShapeQuery &q) -> ShapeResult {
                         return Shape{q.attrs.getIntList("shape")};
                       },
                       fill));
  t.push_back(internal("sum_all", 1, {}, "the sum of every element: a scalar",
                       [](const ShapeQuery &) -> ShapeResult { return Shape{{}}; },
                       [](const KernelCall &k) {
                         double s = 0;
                         for (double v : in(k, 0).data)
                           s += v;
                         k.out[0] = s;
                       }));
  t.push_back(internal("expand_scalar", 2, {}, "a scalar repeated to the shape of input 1", like(1),
                       [](const KernelCall &k) {
                         std::fill(k.out.data.begin(), k.out.data.end(), in(k, 0)[0]);
                       }));
  t.push_back(internal("expand_axis", 2, {required(intAttr("axis", {}, "the axis of input 1"))},
                       "input 0 repeated along an axis to the shape of input 1", like(1),
                       [](const KernelCall &k) {
                         const Tensor &x = in(k, 1);
                         int64_t axis = k.attrs.getInt("axis");
                         if (axis < 0)
                           axis += static_cast<int64_t>(x.rank());
                         int64_t len = x.dims[static_cast<size_t>(axis)], inner = 1;
                         for (size_t d = static_cast<size_t>(axis) + 1; d < x.rank(); ++d)
                           inner *= x.dims[d];
                         for (size_t i = 0; i < k.out.size(); ++i) {
                           int64_t o = static_cast<int64_t>(i) / (len * inner);
                           int64_t s = static_cast<int64_t>(i) % inner;
                           k.out[i] = in(k, 0)[static_cast<size_t>(o * inner + s)];
                         }
                       }));
  t.push_back(internal("scale", 1, {required(floatAttr("factor", {}, "the factor"))},
                       "x times a constant", like(0), [](const KernelCall &k) {
                         for (size_t i = 0; i < k.out.size(); ++i)
                           k.out[i] = in(k, 0)[i] * k.attrs.getFloat("factor");
                       }));
  t.push_back(internal("batch_sum", 1, {}, "[N, …] -> […]", batchSumShape, batchSum));
  t.push_back(internal("channel_sum", 1, {}, "[N, C, …] -> [C]", channelSumShape, channelSum));
  t.push_back(internal("contract", 2, {}, "Σ over leading axes of a[…, k] b[…, n] -> [k, n]",
                       contractShape, contract));
  t.push_back(internal("slice", 1,
                       {required(intAttr("axis", {}, "the axis")),
                        required(intAttr("start", {}, "first index")),
                        required(intAttr("length", {}, "how many"))},
                       "a contiguous part along an axis", sliceShape, slice));
  t.push_back(internal("relu_grad", 2, {}, "dy where y = relu(x) > 0 (where x > 0)", sameAsFirstTwo,
                       [](const KernelCall &k) {
                         pointwise(k, [](double dy, double y) { return y > 0 ? dy : 0.0; });
                       }));
  t.push_back(internal("leaky_relu_grad", 2, {floatAttr("alpha", 0.01, "slope")},
                       "dy, times alpha where x <= 0", sameAsFirstTwo, [](const KernelCall &k) {
                         double a = k.attrs.getFloat("alpha");
                         pointwise(k, [a](double dy, double x) { return x > 0 ? dy : a * dy; });
                       }));
  t.push_back(internal("gelu_grad", 2, {stringAttr("approximate", "none", "none or tanh")},
                       "dy · gelu'(x)", sameAsFirstTwo, geluGrad));
  t.push_back(internal("sigmoid_grad", 2, {}, "dy · y (1 - y), from the output y",
                       sameAsFirstTwo, [](const KernelCall &k) {
                         pointwise(k, [](double dy, double y) { return dy * y * (1 - y); });
                       }));
  t.push_back(internal("tanh_grad", 2, {}, "dy · (1 - y²), from the output y", sameAsFirstTwo,
                       [](const KernelCall &k) {
                         pointwise(k, [](double dy, double y) { return dy * (1 - y * y); });
                       }));
  t.push_back(internal("softmax_grad", 2, {axisAttr()}, "y (dy - Σ dy·y)", sameAsFirstTwo,
                       softmaxGrad(false)));
  t.push_back(internal("log_softmax_grad", 2, {axisAttr()}, "dy - exp(y) Σ dy", sameAsFirstTwo,
                       softmaxGrad(true)));
  std::vector<AttrSpec> window = {
      required(windowAttr("kernel", {}, "kernel", 1)),
      optional(windowAttr("stride", {}, "stride", 1)),
      windowAttr("padding", std::vector<int64_t>{0}, "padding", 0)};
  t.push_back(internal("conv2d_grad_input", 3, window, "dL/dx of conv2d(x, W)", like(2),
                       conv2dGradInput));
  t.push_back(internal("conv2d_grad_weight", 3, window, "dL/dW of conv2d(x, W)", like(2),
                       conv2dGradWeight));
  t.push_back(internal("maxpool2d_grad", 2, window, "dL/dx of maxpool2d", like(1), poolGrad(true)));
  t.push_back(internal("avgpool2d_grad", 2, window, "dL/dx of avgpool2d", like(1),
                       poolGrad(false)));
  std::vector<AttrSpec> bn = {floatAttr("momentum", 0.1, "momentum"),
                              floatAttr("eps", 1e-5, "eps")};
  t.push_back(internal("batchnorm_grad_input", 5, bn, "dL/dx of batchnorm", like(1),
                       batchnormGradInput));
  t.push_back(internal("batchnorm_grad_weight", 4, bn, "dL/dγ of batchnorm", channelSumShape,
                       batchnormGradWeight));
  t.push_back(internal("cross_entropy_grad", 3, {}, "dL/dz of cross_entropy(z, labels)", like(1),
                       crossEntropyGrad));
  // Arithmetic for optimizer updates and schedules.
  t.push_back(internal("sub", 2, {}, "a - b", broadcastShape,
                       binaryKernel([](double a, double b) { return a - b; })));
  t.push_back(internal("div", 2, {}, "a / b", broadcastShape,
                       binaryKernel([](double a, double b) { return a / b; })));
  t.push_back(internal("minimum", 2, {}, "the smaller of a and b", broadcastShape,
                       binaryKernel([](double a, double b) { return std::min(a, b); })));
  t.push_back(internal("sqrt", 1, {}, "square root", like(0),
                       unaryKernel([](double x, const Attrs &) { return std::sqrt(x); })));
  t.push_back(internal("floor", 1, {}, "round down", like(0),
                       unaryKernel([](double x, const Attrs &) { return std::floor(x); })));
  t.push_back(internal("cos", 1, {}, "cosine", like(0),
                       unaryKernel([](double x, const Attrs &) { return std::cos(x); })));
  t.push_back(internal("pow_of", 1, {required(floatAttr("base", {}, "the base"))},
                       "base to the power x", like(0), unaryKernel([](double x, const Attrs &a) {
                         return std::pow(a.getFloat("base"), x);
                       })));
  t.push_back(internal("channel_mean", 1, {}, "per-channel mean of [N, C, …]", channelSumShape,
                       channelStat(false)));
  t.push_back(internal("channel_var", 1, {}, "per-channel unbiased variance of [N, C, …]",
                       channelSumShape, channelStat(true)));
  t.push_back(internal("mse_grad", 3, {}, "dL/dy of mse(y, labels)", like(1), mseGrad));
}

} // namespace nnc
