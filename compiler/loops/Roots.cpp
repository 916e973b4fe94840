// Roots.cpp — the loop nests of the ops that own one: matrix products,
// convolution and pooling with their gradients, reductions, softmax,
// batchnorm and the losses. Each hands every output element it computes to
// an epilogue, where the planner fuses what follows.
//
// Every sum runs in a fixed order, written in the loops: results depend on
// neither the thread count nor the machine. Matrix products keep each
// output's sum sequential over the inner index, and compute blocks of
// outputs along the contiguous columns together, as the lanes of vectors
// held in registers, so no sum is reordered.
#include "loops/Lowering.h"

#include "ops/Kernels.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace nnc::loops::detail {
namespace {

ExprRef sub(ExprRef a, ExprRef b) { return binary(BinaryOp::Sub, std::move(a), std::move(b)); }
ExprRef div(ExprRef a, ExprRef b) { return binary(BinaryOp::Div, std::move(a), std::move(b)); }
ExprRef max(ExprRef a, ExprRef b) { return binary(BinaryOp::Max, std::move(a), std::move(b)); }
ExprRef min(ExprRef a, ExprRef b) { return binary(BinaryOp::Min, std::move(a), std::move(b)); }
ExprRef idx(int v) { return var(v, Type::I64); }
ExprRef scalar(int v) { return var(v, Type::F32); }
/// ceil(a / b) for b > 0 and a > -b (enough for window bounds).
ExprRef ceilDiv(ExprRef a, int64_t b) { return div(add(a, i64(b - 1)), i64(b)); }

std::vector<Stmt> concat(std::vector<Stmt> a, std::vector<Stmt> b) {
  for (Stmt &s : b)
    a.push_back(std::move(s));
  return a;
}

class RootLowerer {
public:
  RootLowerer(const Node &n, Context &c, const Epilogue &epi)
      : n_(n), c_(c), g_(c.graph()), epi_(epi) {}

  Stmt run() {
    const std::string &op = n_.op->name;
    if (op == "dense")
      return dense();
    if (op == "matmul")
      return matmul();
    if (op == "contract")
      return contract();
    if (op == "batch_sum")
      return batchSum();
    bool isConv = op == "conv2d" || op == "conv2d_grad_input" || op == "conv2d_grad_weight";
    kernels::Geometry geo = isConv ? kernels::geometry(n_.attrs) : kernels::Geometry{};
    bool unitStride = isConv && geo.sh == 1 && geo.sw == 1;
    if (op == "conv2d" && unitStride)
      return convTiled();
    if (op == "conv2d" || op == "maxpool2d" || op == "avgpool2d")
      return windowed(op);
    if (op == "conv2d_grad_input" && unitStride && geo.ph < geo.kh && geo.pw < geo.kw)
      return convGradInputTiled();
    if (op == "conv2d_grad_input")
      return convGradInput();
    if (op == "conv2d_grad_weight" && unitStride)
      return convGradWeightTiled();
    if (op == "conv2d_grad_weight")
      return convGradWeight();
    if (op == "maxpool2d_grad" || op == "avgpool2d_grad")
      return poolGrad(op == "maxpool2d_grad");
    if (op == "softmax" || op == "log_softmax")
      return softmax(op == "log_softmax");
    if (op == "softmax_grad" || op == "log_softmax_grad")
      return softmaxGrad(op == "log_softmax_grad");
    if (op == "sum" || op == "mean")
      return reduceAxis(op == "mean");
    if (op == "sum_all")
      return sumAll();
    if (op == "channel_sum" || op == "channel_mean" || op == "channel_var")
      return channelStat(op);
    if (op == "batchnorm")
      return batchnorm();
    if (op == "batchnorm_grad_input")
      return batchnormGradInput();
    if (op == "batchnorm_grad_weight")
      return batchnormGradWeight();
    if (op == "concat")
      return concatenate();
    if (op == "cross_entropy")
      return crossEntropy();
    if (op == "cross_entropy_grad")
      return crossEntropyGrad();
    if (op == "mse")
      return mse();
    if (op == "mse_grad")
      return mseGrad();
    throw std::logic_error("internal error: no loop nest for " + op);
  }

  /// The pair: rows in parallel, each row's loss into a scratch buffer and
  /// its gradient to the epilogue; then the losses summed in row order.
  Stmt crossEntropyPair(const Node &loss) {
    const Shape &zs = g_.value(n_.inputs[1]).shape;
    int64_t classes = zs.dims[1];
    int rowLoss = c_.scratch(n_.layer + ".row_loss", 1, true);
    int r = c_.newVar();
    Stmt rows = parallelLoop(r, batch(), i64(4 * classes),
                             rowOfCrossEntropy(n_.inputs[1], n_.inputs[2], r, classes, rowLoss,
                                               true));
    int r2 = c_.newVar(), total = c_.newVar();
    std::vector<Stmt> sum{local(total, f32(0)),
                          loop(r2, batch(), {assign(total, add(scalar(total), loops::load(rowLoss, idx(r2))))})};
    ExprRef mean = div(scalar(total), unary(UnaryOp::ToF32, batch()));
    sum.push_back(store(c_.buffer(loss.output), i64(0), mean));
    return block({rows, block(sum)});
  }

private:
  int in(size_t k) { return c_.buffer(n_.inputs[k]); }
  const Shape &shapeOf(size_t k) { return g_.value(n_.inputs[k]).shape; }
  const Shape &outShape() { return g_.value(n_.output).shape; }
  ExprRef load(size_t k, ExprRef at) { return c_.read(n_.inputs[k], std::move(at)); }
  int newVar() { return c_.newVar(); }

  /// Rows of a value: N·(product of the leading dims but the last), or just the product.
  ExprRef rows(const Shape &s) {
    int64_t per = 1;
    for (size_t d = 0; d + 1 < s.rank(); ++d)
      if (s.dims[d] != kBatch)
        per *= s.dims[d];
    return s.isBatched() ? mul(batch(), i64(per)) : i64(per);
  }

  /// Elements of the leading axes before `axis` (N included when batched).
  ExprRef outerCount(const Shape &s, int64_t axis) {
    int64_t per = 1;
    for (size_t d = 0; d < static_cast<size_t>(axis); ++d)
      if (s.dims[d] != kBatch)
        per *= s.dims[d];
    return s.isBatched() ? mul(batch(), i64(per)) : i64(per);
  }

  int64_t axisOf(const char *name, size_t rank) {
    int64_t a = n_.attrs.getInt(name);
    return a < 0 ? a + static_cast<int64_t>(rank) : a;
  }

  /// The register tile of products and of the convolutions: kRows rows
  /// (so each load of B serves them all) of widthFor() columns. With AVX2
  /// (8 lanes, 16 registers) that is 24 columns, 12 vector sums: per step of
  /// k, 4 broadcasts of a and 3 loads of b for 12 fmas (2 rows of 32
  /// columns took 2 broadcasts and 4 loads for 8), leaving 4 registers for b
  /// and a. Four rows also split a batch of 64 (and dense layers of 64 units,
  /// the rows of their weight gradient) into 16 groups, even on 2 threads;
  /// six rows of 16 would make 11, and GCC spills a sum of the emitted C++'s.
  static constexpr int64_t kRows = 4;
  /// Rows of W a dense layer's transpose takes per block (dense()): one
  /// cache line of floats (the forward of a 1024-unit layer fed by 1024,
  /// transpose and product, on 1 thread: 1.7 ms with blocks of 8, 1.5 with
  /// 16, 1.9 with 32, 2.9 with 64).
  static constexpr int64_t kTransposeRows = 16;
  /// The longest innermost reduction loop of a convolution's tile written
  /// out step by step (tiles()): kernels up to 5 wide.
  static constexpr int64_t kUnrollKernel = 5;
  /// The lanes of one vector register of floats on the target
  /// (LowerOptions::vectorLanes): 8 (AVX2) or 16 (AVX-512).
  int64_t lanes() const { return c_.vectorLanes(); }
  /// The vector operations of one step of k along a row of `n` columns: the
  /// JIT writes n lanes as vectors of at most 16 lanes (its kMaxVectorLanes),
  /// then of the powers of two left (15 lanes are vectors of 8, 4, 2 and 1).
  static int64_t vectorOps(int64_t n) {
    return n / 16 + static_cast<int64_t>(__builtin_popcountll(static_cast<unsigned long long>(n % 16)));
  }
  /// The vector operations of one step of k along `cols` columns taken in
  /// blocks of `width` (see tiles() for what `fresh` allows at the end).
  int64_t rowOps(int64_t cols, int64_t width, bool fresh) const {
    int64_t blocks = cols / width, left = cols - blocks * width;
    int64_t ops = blocks * vectorOps(width);
    if (left > 0)
      ops += fresh && blocks > 0 && left > lanes() ? vectorOps(width) : vectorOps(left);
    return ops;
  }
  /// The columns of a block of `rows` rows, when `cols` columns are to be
  /// computed. One row alone (the rows of prediction) holds 8 vectors of
  /// sums, enough independent fmas to hide their latency; other row counts
  /// share as many. kRows rows hold 3 vectors each with AVX2 (12 of its 16
  /// registers); AVX-512 has 32 registers, so 3 or 4 vectors each (12 or 16
  /// sums), whichever takes fewer vector operations over all the columns
  /// (the wider on a tie): 64 columns are one block of 4, 143 three of 3.
  /// Blocking never changes a sum: each runs over k alone, in order.
  int64_t widthFor(int64_t rows, int64_t cols, bool fresh = false) const {
    if (rows != kRows)
      return 8 * lanes() / rows;
    if (lanes() < 16)
      return 3 * lanes();
    int64_t three = 3 * lanes(), four = 4 * lanes();
    return rowOps(cols, three, fresh) < rowOps(cols, four, fresh) ? three : four;
  }

  using RowFn = std::function<ExprRef(ExprRef)>;             // init(j), rowOf(r)
  using AFn = std::function<ExprRef(ExprRef, ExprRef)>;      // a(m, k); null: 1
  using BFn = std::function<ExprRef(ExprRef, ExprRef)>;      // b(k, j)

  /// `rows` rows of a matrix product, row r being rowOf(r):
  /// out[m, j] = init(j) + Σ_k a(m, k) · b(k, j), each sum sequential in k,
  /// then the first `distinctRows` rows' elements to the epilogue. Columns
  /// go in blocks of widthFor(rows, ...) (the last block narrower), each
  /// block's sums the lanes of vectors held in registers across the whole
  /// k loop, one load of b per k for all the rows. Every sum runs in the
  /// same order whatever the blocking.
  /// Given `colFrom` and `colCount`, only the columns [colFrom, colFrom +
  /// colCount) (rows still `cols` long).
  std::vector<Stmt> productRows(int64_t rows, const RowFn &rowOf,
                                ExprRef distinctRows, ExprRef kExtent, int64_t cols,
                                const RowFn &init, const AFn &a, const BFn &b,
                                ExprRef colFrom = nullptr, int64_t colCount = -1) {
    int acc = c_.accumulator();
    auto at = [&](ExprRef m, ExprRef j) { return add(mul(m, i64(cols)), j); };
    auto row = [&](int64_t r) { return rowOf(i64(r)); };
    if (!colFrom)
      colFrom = i64(0);
    if (colCount < 0)
      colCount = cols;
    std::vector<Stmt> body;
    int64_t width = widthFor(rows, colCount);
    int64_t blocks = colCount / width, done = blocks * width;
    // A block of `lanes` columns from column `from`: the sums in registers.
    auto block = [&](ExprRef from, int64_t lanesCount) {
      int u = newVar(), k = newVar(), bv = newVar();
      ExprRef col = add(from, idx(u));
      std::vector<int> sums, as;
      std::vector<Stmt> lanesBody, kBody;
      for (int64_t r = 0; r < rows; ++r) {
        sums.push_back(newVar());
        as.push_back(newVar());
        lanesBody.push_back(local(sums.back(), init(col)));
      }
      // b's vector, then each row's value of a next to its fmas (GCC,
      // given all of a first, held them all and spilled sums)
      kBody.push_back(local(bv, b(idx(k), col)));
      for (int64_t r = 0; r < rows; ++r) {
        ExprRef t = scalar(sums[static_cast<size_t>(r)]);
        if (a)
          kBody.push_back(local(as[static_cast<size_t>(r)], a(row(r), idx(k))));
        kBody.push_back(assign(sums[static_cast<size_t>(r)],
                               a ? fma(scalar(as[static_cast<size_t>(r)]), scalar(bv), t)
                                 : add(t, scalar(bv))));
      }
      lanesBody.push_back(loop(k, kExtent, kBody));
      for (int64_t r = 0; r < rows; ++r)
        lanesBody.push_back(store(acc, at(row(r), col), scalar(sums[static_cast<size_t>(r)])));
      Stmt lanes = loop(u, i64(lanesCount), lanesBody);
      lanes.lanes = true;
      return lanes;
    };
    if (blocks == 1) {
      body.push_back(block(colFrom, width));
    } else if (blocks > 0) {
      int jb = newVar();
      body.push_back(loop(jb, i64(blocks), {block(add(colFrom, mul(idx(jb), i64(width))), width)}));
    }
    if (done < colCount) // the columns left: one narrower block
      body.push_back(block(add(colFrom, i64(done)), colCount - done));
    int rr = newVar(), j3 = newVar();
    ExprRef outAt = at(rowOf(idx(rr)), add(colFrom, idx(j3)));
    std::vector<Stmt> tail = epi_(outAt, loops::load(acc, outAt));
    if (!tail.empty())
      body.push_back(loop(rr, distinctRows, {loop(j3, i64(colCount), tail)}));
    return body;
  }

  /// A whole matrix product over `count` rows, in groups of kRows rows in
  /// parallel. The last group repeats the last row where rows run out
  /// (its sums, computed again, store the same values), which costs less
  /// than a second copy of the code for the rows left over; the epilogue
  /// runs once per distinct row.
  Stmt product(ExprRef count, ExprRef kExtent, int64_t cols, ExprRef rowCost, const RowFn &init,
               const AFn &a, const BFn &b) {
    if (!c_.training())
      return productByRows(count, kExtent, cols, rowCost, init, a, b);
    int g = newVar();
    ExprRef last = sub(count, i64(1));
    auto rowOf = [&](ExprRef r) { return min(add(mul(idx(g), i64(kRows)), r), last); };
    // the epilogue once per row: it may read back what it writes (an
    // accumulator that is also an output), so it must not run twice
    ExprRef distinct = min(i64(kRows), sub(count, mul(idx(g), i64(kRows))));
    std::vector<Stmt> grouped =
        productRows(kRows, rowOf, distinct, kExtent, cols, init, a, b);
    return parallelLoop(g, div(add(count, i64(kRows - 1)), i64(kRows)),
                        mul(rowCost, i64(kRows)), grouped);
  }

  /// The same product for prediction, where a batch is often a single
  /// image: the whole groups of kRows rows in parallel, then the rows left
  /// over one at a time, each with the wider one-row tile (so an image
  /// alone costs one row, not kRows).
  Stmt productByRows(ExprRef count, ExprRef kExtent, int64_t cols, ExprRef rowCost,
                     const RowFn &init, const AFn &a, const BFn &b) {
    int g = newVar(), r = newVar();
    ExprRef groups = div(count, i64(kRows)), whole = mul(groups, i64(kRows));
    std::vector<Stmt> grouped = productRows(
        kRows, [&](ExprRef k) { return add(mul(idx(g), i64(kRows)), k); }, i64(kRows), kExtent,
        cols, init, a, b);
    std::vector<Stmt> parts{parallelLoop(g, groups, mul(rowCost, i64(kRows)), grouped)};
    ExprRef left = sub(count, whole);
    if (left->kind == ExprKind::Const && left->i == 0)
      return block(std::move(parts));
    int64_t width = widthFor(1, cols), full = cols / width, rest = cols - full * width;
    if (full + (rest > 0) < 2) {
      std::vector<Stmt> single = productRows(
          1, [&](ExprRef) { return add(whole, idx(r)); }, i64(1), kExtent, cols, init, a, b);
      parts.push_back(parallelLoop(r, left, rowCost, single));
      return block(std::move(parts));
    }
    // Wider rows: one parallel iteration per (row, block of columns), so
    // that one image's wide layer splits across threads.
    int rb = newVar();
    ExprRef row = add(whole, div(idx(rb), i64(full)));
    ExprRef from = mul(sub(idx(rb), mul(div(idx(rb), i64(full)), i64(full))), i64(width));
    std::vector<Stmt> blocks = productRows(
        1, [&](ExprRef) { return row; }, i64(1), kExtent, cols, init, a, b, from, width);
    ExprRef blockCost = div(mul(rowCost, i64(width)), i64(cols));
    parts.push_back(parallelLoop(rb, mul(left, i64(full)), blockCost, blocks));
    if (rest > 0) {
      std::vector<Stmt> last = productRows(
          1, [&](ExprRef) { return add(whole, idx(r)); }, i64(1), kExtent, cols, init, a, b,
          i64(full * width), rest);
      parts.push_back(parallelLoop(r, left, div(mul(rowCost, i64(rest)), i64(cols)), last));
    }
    return block(std::move(parts));
  }

  /// dense: y[r, o] = b[o] + Σ_i x[r, i] W[o, i]. W is [out, in]; its
  /// transpose goes to a scratch buffer first so that the columns are
  /// contiguous — in a training step every time (W changes every step), in
  /// prediction to a cache, only when the weights changed since the last call.
  Stmt dense() {
    int64_t inF = shapeOf(0).dims.back(), out = n_.attrs.getInt("units");
    bool bias = n_.inputs.size() > 2;
    const std::string name = g_.value(n_.inputs[1]).name + ".T";
    bool cached = !c_.training();
    int wt = cached ? c_.cache(name, inF * out) : c_.scratch(name, inF * out, false);
    // In blocks of kTransposeRows rows of W, one parallel iteration each:
    // for every column i of W, the block's floats of it go to one cache
    // line of W.T's row i, and the block's rows of W are read a float at a
    // time from lines that stay in L1 for the next 15 columns. (Walking all
    // `out` rows for each column kept them in L1 only while they fit: with a
    // 1024 × 1024 weight, rows 4 KB apart, the layer's forward took 4.9 ms
    // per step on 1 thread, now 1.5.)
    const int64_t blocks = (out + kTransposeRows - 1) / kTransposeRows;
    ExprRef transposeBlocks = cached ? mul(c_.stale(), i64(blocks)) : i64(blocks);
    int ob = newVar(), i = newVar(), o = newVar();
    ExprRef row = add(mul(idx(ob), i64(kTransposeRows)), idx(o));
    Stmt transpose = parallelLoop(
        ob, transposeBlocks, i64(kTransposeRows * inF),
        {loop(i, i64(inF),
              {loop(o, min(i64(kTransposeRows), sub(i64(out), mul(idx(ob), i64(kTransposeRows)))),
                    {store(wt, add(mul(idx(i), i64(out)), row),
                           load(1, add(mul(row, i64(inF)), idx(i))))})})});
    Stmt rowsOf = product(
        rows(shapeOf(0)), i64(inF), out, i64(inF * out),
        [&](ExprRef j) { return bias ? load(2, j) : f32(0); },
        [&](ExprRef m, ExprRef k) { return load(0, add(mul(m, i64(inF)), k)); },
        [&](ExprRef k, ExprRef j) { return loops::load(wt, add(mul(k, i64(out)), j)); });
    return block({transpose, rowsOf});
  }

  /// a @ b: rows of a times one shared [k, n] matrix, or a batch of matrices.
  Stmt matmul() {
    const Shape &as = shapeOf(0), &bs = shapeOf(1);
    int64_t k = as.dims.back(), cols = bs.dims.back();
    auto zero = [](ExprRef) { return f32(0); };
    if (bs.rank() == 2 && !bs.isBatched())
      return product(
          rows(as), i64(k), cols, i64(k * cols), zero,
          [&](ExprRef m, ExprRef kk) { return load(0, add(mul(m, i64(k)), kk)); },
          [&](ExprRef kk, ExprRef j) { return load(1, add(mul(kk, i64(cols)), j)); });
    int64_t m = as.dims[as.rank() - 2];
    int l = newVar(), r = newVar();
    ExprRef row = add(mul(idx(l), i64(m)), idx(r));
    auto body = productRows(
        1, [&](ExprRef) { return row; }, i64(1), i64(k), cols, zero,
        [&](ExprRef mm, ExprRef kk) { return load(0, add(mul(mm, i64(k)), kk)); },
        [&](ExprRef kk, ExprRef j) {
          return load(1, add(mul(add(mul(idx(l), i64(k)), kk), i64(cols)), j));
        });
    ExprRef batches = div(rows(as), i64(m));
    return parallelLoop(l, batches, i64(m * k * cols), {loop(r, i64(m), body)});
  }

  /// contract(a, b)[i, j] = Σ_r a[r, i] b[r, j]: the weight gradient.
  Stmt contract() {
    const Shape &as = shapeOf(0), &bs = shapeOf(1);
    int64_t ka = as.dims.back(), nb = bs.dims.back();
    ExprRef count = rows(as);
    return product(
        i64(ka), count, nb, mul(count, i64(nb)), [](ExprRef) { return f32(0); },
        [&](ExprRef m, ExprRef r) { return load(0, add(mul(r, i64(ka)), m)); },
        [&](ExprRef r, ExprRef j) { return load(1, add(mul(r, i64(nb)), j)); });
  }

  /// batch_sum(t)[j] = Σ_r t[r, j].
  Stmt batchSum() {
    int64_t per = perExample(g_.value(n_.output));
    auto body = productRows(
        1, [](ExprRef) { return i64(0); }, i64(1), batch(), per, [](ExprRef) { return f32(0); }, nullptr,
        [&](ExprRef r, ExprRef j) { return load(0, add(mul(r, i64(per)), j)); });
    return block(body);
  }

  /// The valid taps of a window along one axis: for output position `o`,
  /// kernel offsets p with 0 <= o·stride - pad + p < size. Returns the first
  /// offset and how many there are, so that padding costs no test per tap.
  std::pair<ExprRef, ExprRef> taps(ExprRef o, int64_t stride, int64_t pad, int64_t kernel,
                                   int64_t size) {
    ExprRef start = sub(i64(pad), mul(o, i64(stride)));
    ExprRef lo = max(i64(0), start);
    ExprRef hi = min(i64(kernel), add(start, i64(size)));
    return {lo, max(i64(0), sub(hi, lo))};
  }

  /// conv2d and pooling: for each output position, a reduction over the
  /// valid taps of its window (and the channels, for conv2d).
  Stmt windowed(const std::string &kind) {
    const Shape &xs = shapeOf(0), &ys = outShape();
    int64_t c = xs.dims[1], h = xs.dims[2], w = xs.dims[3];
    int64_t oc = ys.dims[1], oh = ys.dims[2], ow = ys.dims[3];
    kernels::Geometry g = kernels::geometry(n_.attrs);
    bool conv = kind == "conv2d";
    int bf = newVar(), i = newVar(), j = newVar(), ch = newVar(), p = newVar(), q = newVar(),
        s = newVar();
    // one parallel iteration per (example, output channel): a single image
    // still splits across threads
    ExprRef b = div(idx(bf), i64(oc)), f = sub(idx(bf), mul(b, i64(oc)));
    auto [plo, pn] = taps(idx(i), g.sh, g.ph, g.kh, h);
    auto [qlo, qn] = taps(idx(j), g.sw, g.pw, g.kw, w);
    if (g.ph == 0 && g.pw == 0) { // every window lies inside: all its taps, constant bounds
      plo = qlo = i64(0);
      pn = i64(g.kh);
      qn = i64(g.kw);
    }
    auto updateAt = [&](ExprRef kp, ExprRef kq) {
      ExprRef y = add(sub(mul(idx(i), i64(g.sh)), i64(g.ph)), kp);
      ExprRef xcol = add(sub(mul(idx(j), i64(g.sw)), i64(g.pw)), kq);
      ExprRef channel = conv ? idx(ch) : f;
      ExprRef xv = load(0, add(mul(add(mul(add(mul(b, i64(c)), channel), i64(h)), y), i64(w)),
                               xcol));
      if (conv) {
        ExprRef wv =
            load(1, add(mul(add(mul(add(mul(f, i64(c)), idx(ch)), i64(g.kh)), kp), i64(g.kw)),
                        kq));
        return fma(xv, wv, scalar(s));
      }
      return kind == "maxpool2d" ? max(scalar(s), xv) : add(scalar(s), xv);
    };
    Stmt window2;
    if (!conv && g.ph == 0 && g.pw == 0 && g.kh * g.kw <= 16) {
      // a small pooling window, every tap inside: the taps written out in scan order
      std::vector<Stmt> taps;
      for (int64_t pc = 0; pc < g.kh; ++pc)
        for (int64_t qc = 0; qc < g.kw; ++qc)
          taps.push_back(assign(s, updateAt(i64(pc), i64(qc))));
      window2 = loops::block(std::move(taps));
    } else {
      window2 = loop(p, pn, {loop(q, qn, {assign(s, updateAt(add(plo, idx(p)), add(qlo, idx(q))))})});
    }
    ExprRef init = conv ? (n_.inputs.size() > 2 ? load(2, f) : f32(0))
                        : (kind == "maxpool2d" ? f32(-INFINITY) : f32(0));
    ExprRef result = kind == "avgpool2d"
                         ? div(scalar(s), f32(static_cast<double>(g.kh * g.kw)))
                         : scalar(s);
    std::vector<Stmt> body{local(s, init)};
    body.push_back(conv ? loop(ch, i64(c), {window2}) : window2);
    ExprRef at = add(mul(add(mul(idx(bf), i64(oh)), idx(i)), i64(ow)), idx(j));
    body = concat(std::move(body), epi_(at, result));
    int64_t cost = oh * ow * (conv ? c : 1) * g.kh * g.kw;
    return parallelLoop(bf, mul(batch(), i64(oc)), i64(cost),
                        {loop(i, i64(oh), {loop(j, i64(ow), body)})});
  }

  // ---- Convolutions with unit stride, as register-tiled products ----
  //
  // Each is a matrix product whose inner index runs over nested loops:
  // kRows rows at a time, widthFor() columns of sums held in registers as the lanes
  // of vectors across the whole reduction, every sum sequential in the same
  // order as the plain loops of windowed(), convGradInput() and
  // convGradWeight(). Padding becomes zeros in a padded copy (an fma with a
  // zero adds nothing), and the columns of an output plane are taken on a
  // grid as wide as the input plane, so that neighbouring columns read
  // neighbouring input elements (the lanes' loads are contiguous); the few
  // columns past the plane's right edge are computed and dropped.

  using Indices = std::vector<ExprRef>;
  struct Tile {
    int64_t rows = kRows;
    /// The sums start from init alone (not from what store wrote): a block
    /// may then overlap the one before it (see tiles()).
    bool fresh = false;
    std::vector<ExprRef> kExtents; ///< the reduction's nested loops, outermost first
    std::function<ExprRef(int64_t, ExprRef)> init;          ///< (row, column)
    std::function<ExprRef(int64_t, const Indices &)> a;     ///< (row, k): one value per row
    std::function<ExprRef(const Indices &, ExprRef)> b;     ///< (k, column): rises by one per column
    std::function<Stmt(int64_t, ExprRef, ExprRef)> store;   ///< (row, column, sum)
  };

  /// The tile's columns [0, cols), in blocks of widthFor(rows, cols) lanes.
  std::vector<Stmt> tiles(const Tile &t, int64_t cols) {
    int64_t width = widthFor(t.rows, cols, t.fresh), blocks = cols / width, done = blocks * width;
    auto block = [&](ExprRef from, int64_t lanesCount) {
      int u = newVar(), bv = newVar();
      ExprRef col = add(from, idx(u));
      Indices k;
      std::vector<int> kv;
      for (size_t d = 0; d < t.kExtents.size(); ++d) {
        kv.push_back(newVar());
        k.push_back(idx(kv.back()));
      }
      std::vector<int> sums, as;
      std::vector<Stmt> lanesBody, kBody;
      for (int64_t r = 0; r < t.rows; ++r) {
        sums.push_back(newVar());
        as.push_back(newVar());
        lanesBody.push_back(local(sums.back(), t.init(r, col)));
      }
      // one step of k: b's vector, then each row's value of a next to its
      // fmas (as in productRows)
      auto step = [&](const Indices &at, int b, const std::vector<int> &a) {
        kBody.push_back(local(b, t.b(at, col)));
        for (size_t r = 0; r < sums.size(); ++r) {
          kBody.push_back(local(a[r], t.a(static_cast<int64_t>(r), at)));
          kBody.push_back(assign(sums[r], fma(scalar(a[r]), scalar(b), scalar(sums[r]))));
        }
      };
      // A short innermost loop (a kernel row of 3) is written out, its
      // steps in order: the loop's own counting and branch cost as much as
      // a step's loads, and the JIT does not unroll.
      // (Not when it is the only loop: the nest below is made of the
      // loops left.)
      size_t loopsLeft = kv.size();
      const ExprRef &inner = t.kExtents.back();
      if (kv.size() > 1 && inner->kind == ExprKind::Const && inner->type == Type::I64 &&
          inner->i <= kUnrollKernel) {
        --loopsLeft;
        for (int64_t s = 0; s < inner->i; ++s) {
          Indices at = k;
          at.back() = i64(s);
          std::vector<int> a;
          for (size_t r = 0; r < sums.size(); ++r)
            a.push_back(s == 0 ? as[r] : newVar());
          step(at, s == 0 ? bv : newVar(), a);
        }
      } else {
        step(k, bv, as);
      }
      Stmt nest = loops::block({});
      for (size_t d = loopsLeft; d-- > 0;) {
        nest = loop(kv[d], t.kExtents[d], std::move(kBody));
        kBody = {nest};
      }
      lanesBody.push_back(nest);
      for (size_t r = 0; r < sums.size(); ++r)
        lanesBody.push_back(t.store(static_cast<int64_t>(r), col, scalar(sums[r])));
      Stmt lanes = loop(u, i64(lanesCount), lanesBody);
      lanes.lanes = true;
      return lanes;
    };
    std::vector<Stmt> body;
    if (blocks > 0) {
      int jb = newVar();
      body.push_back(loop(jb, i64(blocks), {block(mul(idx(jb), i64(width)), width)}));
    }
    // The columns left: a narrower block, or, when they need more than one
    // vector per row (21 columns are vectors of 16, 4 and 1 lanes, whose
    // sums no longer fit in the registers) and the sums are fresh, a whole
    // block ending at the last column. The columns it shares with the block
    // before are computed again, the same sums in the same order, and
    // stored again with the same values.
    if (done < cols && t.fresh && blocks > 0 && cols - done > lanes())
      body.push_back(block(i64(cols - width), width));
    else if (done < cols)
      body.push_back(block(i64(done), cols - done));
    return body;
  }

  /// The epilogue of a tiled convolution over one row of an output plane
  /// (`width` elements, read from the grid): a lanes loop, so that the
  /// backends write it as vector code where its body allows (LaneRules).
  /// A row is short (11 on fashion_cnn.nn's conv2), shorter than LLVM's
  /// loop vectorizer takes on.
  static Stmt outputRow(int var, int64_t width, std::vector<Stmt> tail) {
    Stmt row = loop(var, i64(width), std::move(tail));
    row.lanes = true;
    return row;
  }

  /// Copies plane `plane` (h × w, read by `src`) into `dst` at element
  /// `to`, a (h + 2·pt) × (w + 2·pl) plane with zeros around it.
  std::vector<Stmt> padPlane(const std::function<ExprRef(ExprRef)> &src, ExprRef from, int dst,
                             ExprRef to, int64_t h, int64_t w, int64_t pt, int64_t pl) {
    int64_t hp = h + 2 * pt, wp = w + 2 * pl;
    int e = newVar(), y = newVar(), x = newVar();
    return {loop(e, i64(hp * wp), {store(dst, add(to, idx(e)), f32(0))}),
            loop(y, i64(h),
                 {loop(x, i64(w), {store(dst, add(to, add(mul(add(idx(y), i64(pt)), i64(wp)),
                                                          add(idx(x), i64(pl)))),
                                         src(add(from, add(mul(idx(y), i64(w)), idx(x)))))})})};
  }

  /// conv2d with unit stride: per example, rows = output channels, columns
  /// = output positions on a grid as wide as the (padded) input, k = (input
  /// channel, kernel row, kernel column), the same order as windowed().
  Stmt convTiled() {
    const Shape &xs = shapeOf(0), &ys = outShape();
    int64_t c = xs.dims[1], h = xs.dims[2], w = xs.dims[3];
    int64_t oc = ys.dims[1], oh = ys.dims[2], ow = ys.dims[3];
    kernels::Geometry g = kernels::geometry(n_.attrs);
    bool bias = n_.inputs.size() > 2;
    int64_t hp = h + 2 * g.ph, wp = w + 2 * g.pw;
    int64_t cols = (oh - 1) * wp + ow; // the last column read is the plane's last element
    int64_t pairs = (oc + kRows - 1) / kRows;
    std::vector<Stmt> parts;
    // the input: x itself, or its padded copy (per example, in parallel)
    int b0 = newVar();
    std::vector<Stmt> pad;
    std::function<ExprRef(ExprRef)> xAt = paddedInput(0, b0, c, h, w, g, pad);
    if (!pad.empty())
      parts.push_back(parallelLoop(b0, batch(), i64(c * hp * wp), std::move(pad)));
    // one parallel iteration per (example, group of kRows output channels):
    // a single image still splits across threads
    int bp = newVar();
    ExprRef b = div(idx(bp), i64(pairs)), pg = sub(idx(bp), mul(b, i64(pairs)));
    int acc = c_.scratch(n_.layer + ".grid", oc * cols, true);
    ExprRef last = i64(oc - 1);
    auto f = [&](int64_t r) { return min(add(mul(pg, i64(kRows)), i64(r)), last); };
    Tile t;
    t.kExtents = {i64(c), i64(g.kh), i64(g.kw)};
    t.init = [&](int64_t r, ExprRef) { return bias ? load(2, f(r)) : f32(0); };
    t.fresh = true;
    t.a = [&](int64_t r, const Indices &k) {
      return load(1, add(mul(add(mul(add(mul(f(r), i64(c)), k[0]), i64(g.kh)), k[1]), i64(g.kw)), k[2]));
    };
    t.b = [&](const Indices &k, ExprRef col) {
      ExprRef plane = mul(add(mul(b, i64(c)), k[0]), i64(hp * wp));
      return xAt(add(add(plane, add(mul(k[1], i64(wp)), k[2])), col));
    };
    t.store = [&](int64_t r, ExprRef col, ExprRef v) {
      return store(acc, add(mul(add(mul(b, i64(oc)), f(r)), i64(cols)), col), v);
    };
    std::vector<Stmt> body = tiles(t, cols);
    // the epilogue once per distinct channel of the group
    int rr = newVar(), i = newVar(), j = newVar();
    ExprRef ff = add(mul(pg, i64(kRows)), idx(rr));
    ExprRef at = add(mul(add(mul(add(mul(b, i64(oc)), ff), i64(oh)), idx(i)), i64(ow)), idx(j));
    ExprRef v = loops::load(acc, add(mul(add(mul(b, i64(oc)), ff), i64(cols)),
                                     add(mul(idx(i), i64(wp)), idx(j))));
    std::vector<Stmt> tail = epi_(at, v);
    if (!tail.empty())
      body.push_back(loop(rr, min(i64(kRows), sub(i64(oc), mul(pg, i64(kRows)))),
                          {loop(i, i64(oh), {outputRow(j, ow, tail)})}));
    parts.push_back(parallelLoop(bp, mul(batch(), i64(pairs)),
                                 i64(kRows * cols * c * g.kh * g.kw), body));
    return block(std::move(parts));
  }

  /// conv2d_grad_input with unit stride: a convolution of dy, padded by
  /// kernel - 1 - padding, with the kernel flipped. Per example, rows =
  /// input channels, columns = input positions on a grid as wide as the
  /// padded dy, k = (output channel, window row, window column) in the
  /// order of convGradInput() (kernel offsets descending).
  Stmt convGradInputTiled() {
    const Shape &dys = shapeOf(0), &xs = outShape();
    int64_t c = xs.dims[1], h = xs.dims[2], w = xs.dims[3];
    int64_t oc = dys.dims[1], oh = dys.dims[2], ow = dys.dims[3];
    kernels::Geometry g = kernels::geometry(n_.attrs);
    int64_t pt = g.kh - 1 - g.ph, pl = g.kw - 1 - g.pw;
    int64_t hp = oh + 2 * pt, wp = ow + 2 * pl;
    int64_t cols = (h - 1) * wp + w;
    int b = newVar(), f0 = newVar(), pg = newVar();
    int dp = c_.scratch(n_.layer + ".dy_padded", oc * hp * wp, true);
    int acc = c_.scratch(n_.layer + ".dx_grid", c * cols, true);
    std::vector<Stmt> body{loop(
        f0, i64(oc),
        padPlane([&](ExprRef at) { return load(0, at); },
                 mul(add(mul(idx(b), i64(oc)), idx(f0)), i64(oh * ow)), dp,
                 mul(add(mul(idx(b), i64(oc)), idx(f0)), i64(hp * wp)), oh, ow, pt, pl))};
    ExprRef last = i64(c - 1);
    auto ch = [&](int64_t r) { return min(add(mul(idx(pg), i64(kRows)), i64(r)), last); };
    Tile t;
    t.kExtents = {i64(oc), i64(g.kh), i64(g.kw)};
    t.init = [](int64_t, ExprRef) { return f32(0); };
    t.fresh = true;
    t.a = [&](int64_t r, const Indices &k) {
      ExprRef p = sub(i64(g.kh - 1), k[1]), q = sub(i64(g.kw - 1), k[2]);
      return load(1, add(mul(add(mul(add(mul(k[0], i64(c)), ch(r)), i64(g.kh)), p), i64(g.kw)), q));
    };
    t.b = [&](const Indices &k, ExprRef col) {
      ExprRef plane = mul(add(mul(idx(b), i64(oc)), k[0]), i64(hp * wp));
      return loops::load(dp, add(add(plane, add(mul(k[1], i64(wp)), k[2])), col));
    };
    t.store = [&](int64_t r, ExprRef col, ExprRef v) {
      return store(acc, add(mul(add(mul(idx(b), i64(c)), ch(r)), i64(cols)), col), v);
    };
    int64_t pairs = (c + kRows - 1) / kRows;
    body.push_back(loop(pg, i64(pairs), tiles(t, cols)));
    int cc = newVar(), y = newVar(), x = newVar();
    ExprRef at = add(mul(add(mul(add(mul(idx(b), i64(c)), idx(cc)), i64(h)), idx(y)), i64(w)), idx(x));
    ExprRef v = loops::load(acc, add(mul(add(mul(idx(b), i64(c)), idx(cc)), i64(cols)),
                                     add(mul(idx(y), i64(wp)), idx(x))));
    std::vector<Stmt> tail = epi_(at, v);
    if (!tail.empty())
      body.push_back(loop(cc, i64(c), {loop(y, i64(h), {outputRow(x, w, tail)})}));
    return parallelLoop(b, batch(), i64(pairs * kRows * cols * oc * g.kh * g.kw), body);
  }

  /// Input k (an image batch, c × h × w per example) as the loops of
  /// example b0 read it: itself, or, with padding, a zero-padded copy made
  /// by a loop appended to `pack`.
  std::function<ExprRef(ExprRef)> paddedInput(size_t k, int b0, int64_t c, int64_t h, int64_t w,
                                              const kernels::Geometry &g, std::vector<Stmt> &pack) {
    if (g.ph == 0 && g.pw == 0)
      return [this, k](ExprRef at) { return load(k, at); };
    int64_t hp = h + 2 * g.ph, wp = w + 2 * g.pw;
    int xp = c_.scratch(n_.layer + ".padded", c * hp * wp, true);
    int ch = newVar();
    pack.push_back(loop(ch, i64(c),
                        padPlane([&](ExprRef at) { return load(k, at); },
                                 mul(add(mul(idx(b0), i64(c)), idx(ch)), i64(h * w)), xp,
                                 mul(add(mul(idx(b0), i64(c)), idx(ch)), i64(hp * wp)), h, w, g.ph,
                                 g.pw)));
    return [xp](ExprRef at) { return loops::load(xp, at); };
  }

  /// A weight gradient as `rows` × `cols` sums over (example, output row,
  /// output column) (kExtents {oh, ow}): groups of kRows rows split into
  /// chunks of `perChunk` groups run in parallel, each chunk's sums kept in
  /// a scratch matrix between examples (reloaded and stored back, which
  /// changes no sum's order) so that one example's operands stay in cache
  /// while all the chunk's rows use them; then each sum to the epilogue at
  /// weightAt(row, col). `operands` sets the tile's a and b for example b,
  /// row(r) being the tile's r-th row.
  using RowOf = std::function<ExprRef(int64_t)>;
  Stmt chunkedSums(int64_t rows, int64_t cols, int64_t perChunk, int64_t oh, int64_t ow,
                   const std::function<void(Tile &, int b, const RowOf &row)> &operands,
                   const std::function<ExprRef(ExprRef, ExprRef)> &weightAt) {
    int acc = c_.scratch(n_.layer + ".dw_sums", rows * cols, false);
    int64_t pairs = (rows + kRows - 1) / kRows, chunks = (pairs + perChunk - 1) / perChunk;
    int ck = newVar(), b = newVar(), pp = newVar();
    ExprRef firstPair = mul(idx(ck), i64(perChunk));
    ExprRef pairCount = min(i64(perChunk), sub(i64(pairs), firstPair));
    ExprRef pair = add(firstPair, idx(pp));
    ExprRef lastRow = i64(rows - 1);
    RowOf row = [&](int64_t r) { return min(add(mul(pair, i64(kRows)), i64(r)), lastRow); };
    Tile t;
    t.kExtents = {i64(oh), i64(ow)};
    t.init = [&](int64_t r, ExprRef col) { return loops::load(acc, add(mul(row(r), i64(cols)), col)); };
    operands(t, b, row);
    t.store = [&](int64_t r, ExprRef col, ExprRef v) {
      return store(acc, add(mul(row(r), i64(cols)), col), v);
    };
    // the chunk's rows: zeros, then every example in order, then the epilogue
    ExprRef rowFrom = mul(firstPair, i64(kRows));
    ExprRef rowCount = min(mul(pairCount, i64(kRows)), sub(i64(rows), rowFrom));
    int z = newVar(), rr = newVar(), j = newVar();
    std::vector<Stmt> chunk{
        loop(z, mul(rowCount, i64(cols)), {store(acc, add(mul(rowFrom, i64(cols)), idx(z)), f32(0))}),
        loop(b, batch(), {loop(pp, pairCount, tiles(t, cols))})};
    ExprRef r = add(rowFrom, idx(rr));
    std::vector<Stmt> tail =
        epi_(weightAt(r, idx(j)), loops::load(acc, add(mul(r, i64(cols)), idx(j))));
    if (!tail.empty())
      chunk.push_back(loop(rr, rowCount, {loop(j, i64(cols), tail)}));
    return parallelLoop(ck, i64(chunks), mul(batch(), i64(perChunk * kRows * cols * oh * ow)), chunk);
  }

  /// conv2d_grad_weight with unit stride: rows = (input channel, kernel
  /// row, kernel column), columns = output channels, k = (example, output
  /// row, output column) in the order of convGradWeight(). dy is first
  /// transposed to [N, oh, ow, oc] so that output channels are contiguous;
  /// the rows in parallel chunks (chunkedSums).
  Stmt convGradWeightTiled() {
    const Shape &dys = shapeOf(0), &xs = shapeOf(1);
    int64_t c = xs.dims[1], h = xs.dims[2], w = xs.dims[3];
    int64_t oc = dys.dims[1], oh = dys.dims[2], ow = dys.dims[3];
    kernels::Geometry g = kernels::geometry(n_.attrs);
    int64_t hp = h + 2 * g.ph, wp = w + 2 * g.pw, taps = g.kh * g.kw, rowsAll = c * taps;
    if (rowsAll < oc)
      return convGradWeightByTaps();
    std::vector<Stmt> parts;
    // dy transposed, and x padded when there is padding
    int dyT = c_.scratch(n_.layer + ".dy_T", oh * ow * oc, true);
    int b0 = newVar(), f0 = newVar(), e0 = newVar();
    std::vector<Stmt> pack{loop(
        e0, i64(oh * ow),
        {loop(f0, i64(oc),
              {store(dyT, add(mul(add(mul(idx(b0), i64(oh * ow)), idx(e0)), i64(oc)), idx(f0)),
                     load(0, add(mul(add(mul(idx(b0), i64(oc)), idx(f0)), i64(oh * ow)), idx(e0))))})})};
    std::function<ExprRef(ExprRef)> xAt = paddedInput(1, b0, c, h, w, g, pack);
    parts.push_back(parallelLoop(b0, batch(), i64(oh * ow * oc + c * hp * wp), pack));

    int64_t pairs = (rowsAll + kRows - 1) / kRows;
    auto operands = [&](Tile &t, int b, const RowOf &m) {
      t.a = [&, b](int64_t r, const Indices &k) {
        ExprRef ch = div(m(r), i64(taps));
        ExprRef p = binary(BinaryOp::Sub, div(m(r), i64(g.kw)), mul(div(m(r), i64(taps)), i64(g.kh)));
        ExprRef q = sub(m(r), mul(div(m(r), i64(g.kw)), i64(g.kw)));
        ExprRef plane = mul(add(mul(idx(b), i64(c)), ch), i64(hp * wp));
        return xAt(add(plane, add(mul(add(k[0], p), i64(wp)), add(k[1], q))));
      };
      t.b = [&, b](const Indices &k, ExprRef col) {
        return loops::load(dyT, add(mul(add(mul(add(mul(idx(b), i64(oh)), k[0]), i64(ow)), k[1]), i64(oc)), col));
      };
    };
    // the weight's layout [oc, c, kh, kw]: column f, row (c, kh, kw)
    parts.push_back(chunkedSums(rowsAll, oc, (pairs + 7) / 8, oh, ow, operands,
                                [&](ExprRef row, ExprRef f) { return add(mul(f, i64(rowsAll)), row); }));
    return block(std::move(parts));
  }

  /// conv2d_grad_weight with unit stride and fewer (input channel, kernel
  /// row, kernel column) taps than output channels (a first layer: one
  /// input channel, 9 taps, 32 channels): the product the other way round,
  /// rows = output channels (dy read where it lies), columns = taps, k =
  /// (example, output row, output column), the same order. What is packed
  /// is then the smaller operand: x's windows, one row of taps per output
  /// position ([N, oh, ow, taps], from a padded copy when there is padding)
  /// instead of dy transposed ([N, oh, ow, oc]).
  Stmt convGradWeightByTaps() {
    const Shape &dys = shapeOf(0), &xs = shapeOf(1);
    int64_t c = xs.dims[1], h = xs.dims[2], w = xs.dims[3];
    int64_t oc = dys.dims[1], oh = dys.dims[2], ow = dys.dims[3];
    kernels::Geometry g = kernels::geometry(n_.attrs);
    int64_t hp = h + 2 * g.ph, wp = w + 2 * g.pw, taps = g.kh * g.kw, cols = c * taps;
    std::vector<Stmt> parts;
    // per example: x padded (when there is padding), then its windows
    int b0 = newVar();
    std::vector<Stmt> pack;
    std::function<ExprRef(ExprRef)> xAt = paddedInput(1, b0, c, h, w, g, pack);
    int windows = c_.scratch(n_.layer + ".windows", oh * ow * cols, true);
    int i0 = newVar(), j0 = newVar(), ch0 = newVar(), p0 = newVar(), q0 = newVar();
    ExprRef to = add(mul(add(mul(add(mul(idx(b0), i64(oh)), idx(i0)), i64(ow)), idx(j0)), i64(cols)),
                     add(mul(add(mul(idx(ch0), i64(g.kh)), idx(p0)), i64(g.kw)), idx(q0)));
    ExprRef from = add(mul(add(mul(add(mul(idx(b0), i64(c)), idx(ch0)), i64(hp)),
                               add(idx(i0), idx(p0))),
                           i64(wp)),
                       add(idx(j0), idx(q0)));
    pack.push_back(loop(
        i0, i64(oh),
        {loop(j0, i64(ow),
              {loop(ch0, i64(c),
                    {loop(p0, i64(g.kh), {loop(q0, i64(g.kw), {store(windows, to, xAt(from))})})})})}));
    parts.push_back(parallelLoop(b0, batch(), i64(oh * ow * cols + c * hp * wp), pack));

    auto operands = [&](Tile &t, int b, const RowOf &f) {
      t.a = [&, b](int64_t r, const Indices &k) {
        return load(0, add(mul(add(mul(add(mul(idx(b), i64(oc)), f(r)), i64(oh)), k[0]), i64(ow)), k[1]));
      };
      t.b = [&, b](const Indices &k, ExprRef col) {
        return loops::load(windows,
                           add(mul(add(mul(add(mul(idx(b), i64(oh)), k[0]), i64(ow)), k[1]), i64(cols)), col));
      };
    };
    // each chunk reads every example's windows: chunks of at least two
    // groups of rows halve those reads. The weight's layout [oc, c, kh, kw]
    // is the sums' [oc, taps].
    int64_t pairs = (oc + kRows - 1) / kRows;
    parts.push_back(chunkedSums(oc, cols, std::max<int64_t>(2, (pairs + 3) / 4), oh, ow, operands,
                                [&](ExprRef f, ExprRef m) { return add(mul(f, i64(cols)), m); }));
    return block(std::move(parts));
  }

  /// Output positions o whose window holds input position y: o·stride -
  /// pad + p = y for a kernel offset p. Returns the first such o, and the
  /// count, for offsets p = y + pad - o·stride in [0, kernel).
  std::pair<ExprRef, ExprRef> covering(ExprRef y, int64_t stride, int64_t pad, int64_t kernel,
                                       int64_t outSize) {
    // o >= (y + pad - kernel + 1) / stride (rounded up), o <= (y + pad) / stride
    ExprRef lo = max(i64(0), ceilDiv(sub(add(y, i64(pad)), i64(kernel - 1)), stride));
    ExprRef hi = min(i64(outSize), add(div(add(y, i64(pad)), i64(stride)), i64(1)));
    return {lo, max(i64(0), sub(hi, lo))};
  }

  /// conv2d_grad_input(dy, W, x): dx[b, ch, y, x] = Σ_f Σ_(windows holding
  /// it) dy[b, f, i, j] W[f, ch, p, q], gathered per input element.
  Stmt convGradInput() {
    const Shape &dys = shapeOf(0), &xs = outShape();
    int64_t c = xs.dims[1], h = xs.dims[2], w = xs.dims[3];
    int64_t oc = dys.dims[1], oh = dys.dims[2], ow = dys.dims[3];
    kernels::Geometry g = kernels::geometry(n_.attrs);
    int b = newVar(), ch = newVar(), y = newVar(), x = newVar(), f = newVar(), i = newVar(),
        j = newVar(), s = newVar();
    auto [ilo, in] = covering(idx(y), g.sh, g.ph, g.kh, oh);
    auto [jlo, jn] = covering(idx(x), g.sw, g.pw, g.kw, ow);
    ExprRef oi = add(ilo, idx(i)), oj = add(jlo, idx(j));
    ExprRef p = sub(add(idx(y), i64(g.ph)), mul(oi, i64(g.sh)));
    ExprRef q = sub(add(idx(x), i64(g.pw)), mul(oj, i64(g.sw)));
    ExprRef dy = load(0, add(mul(add(mul(add(mul(idx(b), i64(oc)), idx(f)), i64(oh)), oi), i64(ow)),
                             oj));
    ExprRef wv = load(1, add(mul(add(mul(add(mul(idx(f), i64(c)), idx(ch)), i64(g.kh)), p),
                                 i64(g.kw)),
                             q));
    std::vector<Stmt> body{
        local(s, f32(0)),
        loop(f, i64(oc), {loop(i, in, {loop(j, jn, {assign(s, fma(dy, wv, scalar(s)))})})})};
    ExprRef at = add(mul(add(mul(add(mul(idx(b), i64(c)), idx(ch)), i64(h)), idx(y)), i64(w)), idx(x));
    body = concat(std::move(body), epi_(at, scalar(s)));
    int64_t cost = c * h * w * oc * ((g.kh + g.sh - 1) / g.sh) * ((g.kw + g.sw - 1) / g.sw);
    return parallelLoop(b, batch(), i64(cost),
                        {loop(ch, i64(c), {loop(y, i64(h), {loop(x, i64(w), body)})})});
  }

  /// conv2d_grad_weight(dy, x, W): dW[f, ch, p, q] = Σ_b Σ_(valid i, j)
  /// dy[b, f, i, j] x[b, ch, i·sh - ph + p, j·sw - pw + q].
  Stmt convGradWeight() {
    const Shape &dys = shapeOf(0), &xs = shapeOf(1);
    int64_t c = xs.dims[1], h = xs.dims[2], w = xs.dims[3];
    int64_t oc = dys.dims[1], oh = dys.dims[2], ow = dys.dims[3];
    kernels::Geometry g = kernels::geometry(n_.attrs);
    int f = newVar(), ch = newVar(), p = newVar(), q = newVar(), b = newVar(), i = newVar(),
        j = newVar(), s = newVar();
    // i such that 0 <= i·sh - ph + p < h, and i < oh
    auto range = [&](ExprRef k, int64_t stride, int64_t pad, int64_t size, int64_t outSize) {
      ExprRef lo = max(i64(0), ceilDiv(sub(i64(pad), k), stride));
      ExprRef hi = min(i64(outSize), ceilDiv(sub(i64(size + pad), k), stride));
      return std::make_pair(lo, max(i64(0), sub(hi, lo)));
    };
    auto [ilo, in] = range(idx(p), g.sh, g.ph, h, oh);
    auto [jlo, jn] = range(idx(q), g.sw, g.pw, w, ow);
    ExprRef oi = add(ilo, idx(i)), oj = add(jlo, idx(j));
    ExprRef yy = add(sub(mul(oi, i64(g.sh)), i64(g.ph)), idx(p));
    ExprRef xx = add(sub(mul(oj, i64(g.sw)), i64(g.pw)), idx(q));
    ExprRef dy = load(0, add(mul(add(mul(add(mul(idx(b), i64(oc)), idx(f)), i64(oh)), oi), i64(ow)),
                             oj));
    ExprRef xv = load(1, add(mul(add(mul(add(mul(idx(b), i64(c)), idx(ch)), i64(h)), yy), i64(w)), xx));
    std::vector<Stmt> body{
        local(s, f32(0)),
        loop(b, batch(), {loop(i, in, {loop(j, jn, {assign(s, fma(dy, xv, scalar(s)))})})})};
    ExprRef at =
        add(mul(add(mul(add(mul(idx(f), i64(c)), idx(ch)), i64(g.kh)), idx(p)), i64(g.kw)), idx(q));
    body = concat(std::move(body), epi_(at, scalar(s)));
    return parallelLoop(f, i64(oc), mul(batch(), i64(c * g.kh * g.kw * oh * ow)),
                        {loop(ch, i64(c), {loop(p, i64(g.kh), {loop(q, i64(g.kw), body)})})});
  }

  /// maxpool2d_grad without padding and with windows that do not overlap
  /// (stride = kernel): each input element lies in one window at most, so
  /// the windows are walked instead of the elements. Per window, the same
  /// comparisons as poolGrad() (the maximum of all taps, and of the taps
  /// before each, in scan order) decide which tap gets dy; the elements no
  /// window covers get 0.
  Stmt maxPoolGradTiled() {
    const Shape &dys = shapeOf(0), &xs = shapeOf(1);
    int64_t planes = xs.dims[1], h = xs.dims[2], w = xs.dims[3];
    int64_t oh = dys.dims[2], ow = dys.dims[3];
    kernels::Geometry g = kernels::geometry(n_.attrs);
    int pl = newVar(), i = newVar(), j = newVar(), mAll = newVar();
    ExprRef dy = load(0, add(mul(add(mul(idx(pl), i64(oh)), idx(i)), i64(ow)), idx(j)));
    auto at = [&](ExprRef y, ExprRef x) { return add(mul(add(mul(idx(pl), i64(h)), y), i64(w)), x); };
    std::vector<Stmt> window;
    std::vector<int> tv;
    std::vector<ExprRef> where;
    for (int64_t p = 0; p < g.kh; ++p)
      for (int64_t q = 0; q < g.kw; ++q) {
        where.push_back(at(add(mul(idx(i), i64(g.kh)), i64(p)), add(mul(idx(j), i64(g.kw)), i64(q))));
        tv.push_back(newVar());
        window.push_back(local(tv.back(), load(1, where.back())));
      }
    ExprRef m = f32(-INFINITY);
    for (int t : tv)
      m = max(m, scalar(t));
    window.push_back(local(mAll, m));
    // 0 + dy: what poolGrad()'s sum, starting at 0, gives the tap that gets dy
    // (-0 becomes +0), added once per window rather than under the selects,
    // where GCC turned the add into a branch
    int dz = newVar();
    window.push_back(local(dz, add(f32(0), dy)));
    ExprRef before = f32(-INFINITY);
    for (size_t t = 0; t < tv.size(); ++t) {
      int mb = newVar();
      window.push_back(local(mb, before));
      ExprRef xv = scalar(tv[t]);
      // first maximum: xv > the taps before it and not (the maximum > xv)
      ExprRef gets =
          select(sub(xv, scalar(mb)), select(sub(scalar(mAll), xv), f32(0), scalar(dz)), f32(0));
      window = concat(std::move(window), epi_(where[t], gets));
      before = max(scalar(mb), xv);
    }
    std::vector<Stmt> body{loop(i, i64(oh), {loop(j, i64(ow), window)})};
    // the elements no window covers: the rows below the last window, and
    // the columns right of it
    int y = newVar(), x = newVar(), y2 = newVar(), x2 = newVar();
    if (h > oh * g.kh)
      body.push_back(loop(y, i64(h - oh * g.kh),
                          {loop(x, i64(w), epi_(at(add(idx(y), i64(oh * g.kh)), idx(x)), f32(0)))}));
    if (w > ow * g.kw)
      body.push_back(loop(y2, i64(oh * g.kh),
                          {loop(x2, i64(w - ow * g.kw),
                                epi_(at(idx(y2), add(idx(x2), i64(ow * g.kw))), f32(0)))}));
    return parallelLoop(pl, mul(batch(), i64(planes)), i64(h * w * 2), body);
  }

  /// maxpool2d_grad(dy, x): each window's gradient goes to its first
  /// maximum; avgpool2d_grad: spread evenly over the window (padding
  /// counted). Gathered per input element over the windows holding it.
  Stmt poolGrad(bool isMax) {
    kernels::Geometry geo = kernels::geometry(n_.attrs);
    if (isMax && geo.ph == 0 && geo.pw == 0 && geo.sh == geo.kh && geo.sw == geo.kw &&
        geo.kh * geo.kw <= 16)
      return maxPoolGradTiled();
    const Shape &dys = shapeOf(0), &xs = shapeOf(1);
    int64_t planes = xs.dims[1], h = xs.dims[2], w = xs.dims[3];
    int64_t oh = dys.dims[2], ow = dys.dims[3];
    kernels::Geometry g = kernels::geometry(n_.attrs);
    int b = newVar(), y = newVar(), x = newVar(), i = newVar(), j = newVar(), s = newVar();
    auto [ilo, in] = covering(idx(y), g.sh, g.ph, g.kh, oh);
    auto [jlo, jn] = covering(idx(x), g.sw, g.pw, g.kw, ow);
    ExprRef oi = add(ilo, idx(i)), oj = add(jlo, idx(j));
    ExprRef dy = load(0, add(mul(add(mul(idx(b), i64(oh)), oi), i64(ow)), oj));
    ExprRef here = add(mul(add(mul(idx(b), i64(h)), idx(y)), i64(w)), idx(x));
    std::vector<Stmt> windowBody;
    if (!isMax) {
      windowBody.push_back(
          assign(s, add(scalar(s), div(dy, f32(static_cast<double>(g.kh * g.kw))))));
    } else {
      // Is x[here] the first maximum of window (oi, oj)? It is when it is
      // not below any tap and above every tap scanned before it.
      int p = newVar(), q = newVar(), mAll = newVar(), mBefore = newVar();
      auto [plo, pn] = taps(oi, g.sh, g.ph, g.kh, h);
      auto [qlo, qn] = taps(oj, g.sw, g.pw, g.kw, w);
      ExprRef ty = add(sub(mul(oi, i64(g.sh)), i64(g.ph)), add(plo, idx(p)));
      ExprRef tx = add(sub(mul(oj, i64(g.sw)), i64(g.pw)), add(qlo, idx(q)));
      ExprRef tap = add(mul(add(mul(idx(b), i64(h)), ty), i64(w)), tx);
      ExprRef tv = load(1, tap);
      // taps before `here` in scan order: tap index below here's (same plane, row-major)
      ExprRef before = sub(here, tap); // > 0 when the tap comes first
      windowBody.push_back(local(mAll, f32(-INFINITY)));
      windowBody.push_back(local(mBefore, f32(-INFINITY)));
      windowBody.push_back(loop(
          p, pn,
          {loop(q, qn,
                {assign(mAll, max(scalar(mAll), tv)),
                 assign(mBefore, select(unary(UnaryOp::ToF32, before), max(scalar(mBefore), tv),
                                        scalar(mBefore)))})}));
      ExprRef xv = load(1, here);
      // first maximum: xv > mBefore and not (mAll > xv)
      ExprRef gets = select(sub(xv, scalar(mBefore)), select(sub(scalar(mAll), xv), f32(0), dy),
                            f32(0));
      windowBody.push_back(assign(s, add(scalar(s), gets)));
    }
    std::vector<Stmt> body{local(s, f32(0)), loop(i, in, {loop(j, jn, windowBody)})};
    body = concat(std::move(body), epi_(here, scalar(s)));
    return parallelLoop(b, mul(batch(), i64(planes)), i64(h * w * g.kh * g.kw),
                        {loop(y, i64(h), {loop(x, i64(w), body)})});
  }

  /// softmax and log_softmax along an axis: the maximum first, then the
  /// sum of exponentials, then the outputs.
  Stmt softmax(bool log) {
    const Shape &s = shapeOf(0);
    int64_t axis = axisOf("axis", s.rank());
    int64_t len = s.dims[static_cast<size_t>(axis)], inner = 1;
    for (size_t d = static_cast<size_t>(axis) + 1; d < s.rank(); ++d)
      inner *= s.dims[d];
    int o = newVar(), k = newVar(), i = newVar(), i2 = newVar(), i3 = newVar(), m = newVar(),
        sum = newVar();
    auto at = [&](int iv) { return add(mul(add(mul(idx(o), i64(len)), idx(iv)), i64(inner)), idx(k)); };
    auto shifted = [&](int iv) { return sub(load(0, at(iv)), scalar(m)); };
    ExprRef value = log ? sub(shifted(i3), unary(UnaryOp::Log, scalar(sum)))
                        : div(unary(UnaryOp::Exp, shifted(i3)), scalar(sum));
    return parallelLoop(
        o, outerCount(s, axis), i64(3 * len * inner),
        {loop(k, i64(inner),
              {local(m, f32(-INFINITY)),
               loop(i, i64(len), {assign(m, max(scalar(m), load(0, at(i))))}),
               local(sum, f32(0)),
               loop(i2, i64(len), {assign(sum, add(scalar(sum), unary(UnaryOp::Exp, shifted(i2))))}),
               loop(i3, i64(len), epi_(at(i3), value))})});
  }

  /// softmax: dx = y (dy - Σ dy·y); log_softmax: dx = dy - exp(y) Σ dy.
  Stmt softmaxGrad(bool log) {
    const Shape &s = shapeOf(1);
    int64_t axis = axisOf("axis", s.rank());
    int64_t len = s.dims[static_cast<size_t>(axis)], inner = 1;
    for (size_t d = static_cast<size_t>(axis) + 1; d < s.rank(); ++d)
      inner *= s.dims[d];
    int o = newVar(), k = newVar(), i = newVar(), i2 = newVar(), acc = newVar();
    auto at = [&](int iv) { return add(mul(add(mul(idx(o), i64(len)), idx(iv)), i64(inner)), idx(k)); };
    ExprRef term = log ? load(0, at(i)) : mul(load(0, at(i)), load(1, at(i)));
    ExprRef value = log ? sub(load(0, at(i2)), mul(unary(UnaryOp::Exp, load(1, at(i2))), scalar(acc)))
                        : mul(load(1, at(i2)), sub(load(0, at(i2)), scalar(acc)));
    return parallelLoop(o, outerCount(s, axis), i64(2 * len * inner),
                        {loop(k, i64(inner),
                              {local(acc, f32(0)),
                               loop(i, i64(len), {assign(acc, add(scalar(acc), term))}),
                               loop(i2, i64(len), epi_(at(i2), value))})});
  }

  /// sum and mean along an axis.
  Stmt reduceAxis(bool mean) {
    const Shape &s = shapeOf(0);
    int64_t axis = axisOf("axis", s.rank());
    int64_t len = s.dims[static_cast<size_t>(axis)], inner = 1;
    for (size_t d = static_cast<size_t>(axis) + 1; d < s.rank(); ++d)
      inner *= s.dims[d];
    int o = newVar(), k = newVar(), i = newVar(), acc = newVar();
    ExprRef x = load(0, add(mul(add(mul(idx(o), i64(len)), idx(i)), i64(inner)), idx(k)));
    ExprRef value = mean ? div(scalar(acc), f32(static_cast<double>(len))) : scalar(acc);
    std::vector<Stmt> body{local(acc, f32(0)), loop(i, i64(len), {assign(acc, add(scalar(acc), x))})};
    body = concat(std::move(body), epi_(add(mul(idx(o), i64(inner)), idx(k)), value));
    return parallelLoop(o, outerCount(s, axis), i64(len * inner), {loop(k, i64(inner), body)});
  }

  Stmt sumAll() {
    const Value &x = g_.value(n_.inputs[0]);
    ExprRef count = x.shape.isBatched() ? mul(batch(), i64(perExample(x))) : i64(perExample(x));
    int e = newVar(), acc = newVar();
    std::vector<Stmt> body{local(acc, f32(0)),
                           loop(e, count, {assign(acc, add(scalar(acc), load(0, idx(e))))})};
    return block(concat(std::move(body), epi_(i64(0), scalar(acc))));
  }

  /// Per channel of [N, C, …]: a loop over the batch and the positions.
  struct Channel {
    int64_t c, inner;
    ExprRef count; ///< N·inner, as f32
  };
  Channel channelOf(size_t input) {
    const Shape &xs = shapeOf(input);
    int64_t inner = 1;
    for (size_t d = 2; d < xs.rank(); ++d)
      inner *= xs.dims[d];
    return {xs.dims[1], inner, unary(UnaryOp::ToF32, mul(batch(), i64(inner)))};
  }
  /// Σ over (b, e) of term(at) for channel `ch`, into local `acc`.
  std::vector<Stmt> channelSum(int acc, ExprRef ch, const Channel &cs,
                               const std::function<ExprRef(ExprRef)> &term) {
    int b = newVar(), e = newVar();
    ExprRef at = add(mul(add(mul(idx(b), i64(cs.c)), ch), i64(cs.inner)), idx(e));
    return {local(acc, f32(0)),
            loop(b, batch(), {loop(e, i64(cs.inner), {assign(acc, add(scalar(acc), term(at)))})})};
  }
  /// A loop over channel ch's elements, each to the epilogue.
  Stmt channelOutput(ExprRef ch, const Channel &cs, const std::function<ExprRef(ExprRef)> &value) {
    int b = newVar(), e = newVar();
    ExprRef at = add(mul(add(mul(idx(b), i64(cs.c)), ch), i64(cs.inner)), idx(e));
    return loop(b, batch(), {loop(e, i64(cs.inner), epi_(at, value(at)))});
  }
  /// mean and 1/sqrt(var + eps) of channel ch, as locals (biased variance).
  std::vector<Stmt> batchStats(size_t input, ExprRef ch, const Channel &cs, int mean, int invStd,
                               double eps) {
    int sum = newVar(), sq = newVar();
    auto x = [&](ExprRef at) { return load(input, at); };
    std::vector<Stmt> out = channelSum(sum, ch, cs, x);
    out.push_back(local(mean, div(scalar(sum), cs.count)));
    out = concat(std::move(out), channelSum(sq, ch, cs, [&](ExprRef at) {
                   ExprRef d = sub(x(at), scalar(mean));
                   return mul(d, d);
                 }));
    out.push_back(local(invStd, div(f32(1), unary(UnaryOp::Sqrt,
                                                  add(div(scalar(sq), cs.count), f32(eps))))));
    return out;
  }
  /// The running statistics' mean and 1/sqrt(var + eps), as locals.
  std::vector<Stmt> runningStats(size_t meanInput, ExprRef ch, int mean, int invStd, double eps) {
    return {local(mean, load(meanInput, ch)),
            local(invStd, div(f32(1), unary(UnaryOp::Sqrt, add(load(meanInput + 1, ch), f32(eps)))))};
  }

  /// channel_sum of `chains` channels at once: each channel's sum still
  /// one sequential chain in (b, e) order, but the chains of neighbouring
  /// channels interleaved, so that an add does not wait for the one before
  /// it (a lone chain runs at the latency of an add, not its throughput).
  Stmt channelSums(const Channel &cs, int64_t chains) {
    int g = newVar(), b = newVar(), e = newVar();
    std::vector<int> accs;
    std::vector<Stmt> body, inner;
    auto ch = [&](int64_t r) { return add(mul(idx(g), i64(chains)), i64(r)); };
    for (int64_t r = 0; r < chains; ++r) {
      accs.push_back(newVar());
      body.push_back(local(accs.back(), f32(0)));
    }
    for (int64_t r = 0; r < chains; ++r) {
      ExprRef at = add(mul(add(mul(idx(b), i64(cs.c)), ch(r)), i64(cs.inner)), idx(e));
      inner.push_back(assign(accs[static_cast<size_t>(r)],
                             add(scalar(accs[static_cast<size_t>(r)]), load(0, at))));
    }
    body.push_back(loop(b, batch(), {loop(e, i64(cs.inner), inner)}));
    for (int64_t r = 0; r < chains; ++r)
      body = concat(std::move(body), epi_(ch(r), scalar(accs[static_cast<size_t>(r)])));
    return parallelLoop(g, i64(cs.c / chains), mul(batch(), i64(chains * cs.inner)), body);
  }

  Stmt channelStat(const std::string &op) {
    Channel cs = channelOf(0);
    if (op == "channel_sum")
      for (int64_t chains : {4, 2})
        if (cs.c % chains == 0)
          return channelSums(cs, chains);
    int ch = newVar(), acc = newVar(), mean = newVar(), sq = newVar();
    std::vector<Stmt> body = channelSum(acc, idx(ch), cs, [&](ExprRef at) { return load(0, at); });
    ExprRef value = scalar(acc);
    if (op != "channel_sum") {
      body.push_back(local(mean, div(scalar(acc), cs.count)));
      value = scalar(mean);
    }
    if (op == "channel_var") { // unbiased, as running_var
      body = concat(std::move(body), channelSum(sq, idx(ch), cs, [&](ExprRef at) {
                      ExprRef d = sub(load(0, at), scalar(mean));
                      return mul(d, d);
                    }));
      value = div(scalar(sq), max(f32(1), sub(cs.count, f32(1))));
    }
    body = concat(std::move(body), epi_(idx(ch), value));
    return parallelLoop(ch, i64(cs.c), mul(batch(), i64(2 * cs.inner)), body);
  }

  /// batchnorm(x, γ, β, running_mean, running_var): the batch's statistics
  /// while training, the running ones when evaluating.
  Stmt batchnorm() {
    Channel cs = channelOf(0);
    double eps = n_.attrs.getFloat("eps");
    int ch = newVar(), mean = newVar(), invStd = newVar();
    std::vector<Stmt> body = c_.training() ? batchStats(0, idx(ch), cs, mean, invStd, eps)
                                           : runningStats(3, idx(ch), mean, invStd, eps);
    ExprRef scale = mul(load(1, idx(ch)), scalar(invStd));
    body.push_back(channelOutput(idx(ch), cs, [&](ExprRef at) {
      return fma(sub(load(0, at), scalar(mean)), scale, load(2, idx(ch)));
    }));
    return parallelLoop(ch, i64(cs.c), mul(batch(), i64(3 * cs.inner)), body);
  }

  /// batchnorm_grad_input(dy, x, γ, running_mean, running_var). Training:
  /// dx = γ/σ (dy - mean(dy) - x̂ mean(dy x̂)); evaluation: dx = γ/σ dy.
  Stmt batchnormGradInput() {
    Channel cs = channelOf(1);
    double eps = n_.attrs.getFloat("eps");
    int ch = newVar(), mean = newVar(), invStd = newVar(), sumDy = newVar(), sumDyXhat = newVar();
    std::vector<Stmt> body = c_.training() ? batchStats(1, idx(ch), cs, mean, invStd, eps)
                                           : runningStats(3, idx(ch), mean, invStd, eps);
    ExprRef scale = mul(load(2, idx(ch)), scalar(invStd));
    auto xhat = [&](ExprRef at) { return mul(sub(load(1, at), scalar(mean)), scalar(invStd)); };
    if (c_.training()) {
      body = concat(std::move(body), channelSum(sumDy, idx(ch), cs, [&](ExprRef at) { return load(0, at); }));
      body = concat(std::move(body), channelSum(sumDyXhat, idx(ch), cs, [&](ExprRef at) {
                      return mul(load(0, at), xhat(at));
                    }));
      body.push_back(channelOutput(idx(ch), cs, [&](ExprRef at) {
        return mul(scale, sub(sub(load(0, at), div(scalar(sumDy), cs.count)),
                              div(mul(xhat(at), scalar(sumDyXhat)), cs.count)));
      }));
    } else {
      body.push_back(channelOutput(idx(ch), cs, [&](ExprRef at) { return mul(scale, load(0, at)); }));
    }
    return parallelLoop(ch, i64(cs.c), mul(batch(), i64(5 * cs.inner)), body);
  }

  /// batchnorm_grad_weight(dy, x, running_mean, running_var): Σ dy·x̂ per channel.
  Stmt batchnormGradWeight() {
    Channel cs = channelOf(1);
    double eps = n_.attrs.getFloat("eps");
    int ch = newVar(), mean = newVar(), invStd = newVar(), acc = newVar();
    std::vector<Stmt> body = c_.training() ? batchStats(1, idx(ch), cs, mean, invStd, eps)
                                           : runningStats(2, idx(ch), mean, invStd, eps);
    body = concat(std::move(body), channelSum(acc, idx(ch), cs, [&](ExprRef at) {
                    return mul(load(0, at), mul(sub(load(1, at), scalar(mean)), scalar(invStd)));
                  }));
    body = concat(std::move(body), epi_(idx(ch), scalar(acc)));
    return parallelLoop(ch, i64(cs.c), mul(batch(), i64(4 * cs.inner)), body);
  }

  Stmt concatenate() {
    const Shape &ys = outShape();
    int64_t axis = axisOf("axis", ys.rank());
    int64_t inner = 1, total = ys.dims[static_cast<size_t>(axis)];
    for (size_t d = static_cast<size_t>(axis) + 1; d < ys.rank(); ++d)
      inner *= ys.dims[d];
    std::vector<Stmt> parts;
    int64_t offset = 0;
    for (size_t k = 0; k < n_.inputs.size(); ++k) {
      int64_t len = g_.value(n_.inputs[k]).shape.dims[static_cast<size_t>(axis)];
      int o = newVar(), i = newVar(), s = newVar();
      ExprRef from = add(mul(add(mul(idx(o), i64(len)), idx(i)), i64(inner)), idx(s));
      ExprRef to = add(mul(add(mul(idx(o), i64(total)), add(i64(offset), idx(i))), i64(inner)), idx(s));
      parts.push_back(parallelLoop(o, outerCount(ys, axis), i64(len * inner),
                                   {loop(i, i64(len), {loop(s, i64(inner), epi_(to, load(k, from)))})}));
      offset += len;
    }
    return block(std::move(parts));
  }

  /// One row of softmax cross-entropy over logits `z`: the maximum, the sum
  /// of exponentials, the logit of the label (found by comparison, so that
  /// no label can index out of bounds); then the row's loss to `rowLoss` and,
  /// when `gradient`, dL/dz = (softmax - one_hot) / N to the epilogue.
  std::vector<Stmt> rowOfCrossEntropy(ValueId z, ValueId labels, int r, int64_t classes,
                                      int rowLoss, bool gradient) {
    int zb = c_.buffer(z), lb = c_.buffer(labels);
    int j = newVar(), j2 = newVar(), j3 = newVar(), m = newVar(), sum = newVar(), picked = newVar();
    auto at = [&](int jv) { return add(mul(idx(r), i64(classes)), idx(jv)); };
    ExprRef label = loops::load(lb, idx(r), Type::I64);
    std::vector<Stmt> body{
        local(m, f32(-INFINITY)),
        loop(j, i64(classes), {assign(m, max(scalar(m), loops::load(zb, at(j))))}),
        local(sum, f32(0)), local(picked, f32(0)),
        loop(j2, i64(classes),
             {assign(sum, add(scalar(sum),
                              unary(UnaryOp::Exp, sub(loops::load(zb, at(j2)), scalar(m))))),
              assign(picked, selectEq(idx(j2), label, loops::load(zb, at(j2)), scalar(picked)))}),
        store(rowLoss, idx(r),
              sub(add(scalar(m), unary(UnaryOp::Log, scalar(sum))), scalar(picked)))};
    if (gradient) {
      // dL · (exp(z - m) / sum - [j = label]) / N
      ExprRef dl = load(0, i64(0));
      ExprRef p = div(unary(UnaryOp::Exp, sub(loops::load(zb, at(j3)), scalar(m))), scalar(sum));
      ExprRef value = div(mul(dl, sub(p, selectEq(idx(j3), label, f32(1), f32(0)))),
                          unary(UnaryOp::ToF32, batch()));
      body.push_back(loop(j3, i64(classes), epi_(at(j3), value)));
    }
    return body;
  }

  Stmt crossEntropy() {
    int64_t classes = shapeOf(0).dims[1];
    int rowLoss = c_.scratch(n_.layer + ".row_loss", 1, true);
    int r = newVar(), r2 = newVar(), total = newVar();
    Stmt rowsLoop = parallelLoop(
        r, batch(), i64(3 * classes),
        rowOfCrossEntropy(n_.inputs[0], n_.inputs[1], r, classes, rowLoss, false));
    std::vector<Stmt> sum{local(total, f32(0)),
                          loop(r2, batch(), {assign(total, add(scalar(total), loops::load(rowLoss, idx(r2))))})};
    sum = concat(std::move(sum), epi_(i64(0), div(scalar(total), unary(UnaryOp::ToF32, batch()))));
    return block({rowsLoop, block(sum)});
  }

  Stmt crossEntropyGrad() {
    int64_t classes = shapeOf(1).dims[1];
    int rowLoss = c_.scratch(n_.layer + ".row_loss", 1, true);
    int r = newVar();
    return parallelLoop(r, batch(), i64(4 * classes),
                        rowOfCrossEntropy(n_.inputs[1], n_.inputs[2], r, classes, rowLoss, true));
  }

  /// mse: Σ (y - one_hot)² / (N·C), summed row by row in order.
  Stmt mse() {
    int64_t classes = shapeOf(0).dims[1];
    int r = newVar(), j = newVar(), total = newVar();
    ExprRef label = loops::load(in(1), idx(r), Type::I64);
    ExprRef d = sub(load(0, add(mul(idx(r), i64(classes)), idx(j))),
                    selectEq(idx(j), label, f32(1), f32(0)));
    std::vector<Stmt> body{
        local(total, f32(0)),
        loop(r, batch(), {loop(j, i64(classes), {assign(total, fma(d, d, scalar(total)))})})};
    ExprRef count = unary(UnaryOp::ToF32, mul(batch(), i64(classes)));
    return block(concat(std::move(body), epi_(i64(0), div(scalar(total), count))));
  }

  /// mse_grad(dL, y, labels) = dL · 2 (y - one_hot) / (N·C).
  Stmt mseGrad() {
    int64_t classes = shapeOf(1).dims[1];
    int r = newVar(), j = newVar();
    ExprRef at = add(mul(idx(r), i64(classes)), idx(j));
    ExprRef label = loops::load(in(2), idx(r), Type::I64);
    ExprRef d = sub(load(1, at), selectEq(idx(j), label, f32(1), f32(0)));
    ExprRef count = unary(UnaryOp::ToF32, mul(batch(), i64(classes)));
    ExprRef value = div(mul(mul(load(0, i64(0)), f32(2)), d), count);
    return parallelLoop(r, batch(), i64(classes), {loop(j, i64(classes), epi_(at, value))});
  }

  const Node &n_;
  Context &c_;
  const Graph &g_;
  const Epilogue &epi_;
};

} // namespace

Stmt root(const Node &node, Context &context, const Epilogue &epilogue) {
  return RootLowerer(node, context, epilogue).run();
}

Stmt crossEntropyWithGradient(const Node &loss, const Node &grad, Context &context,
                              const Epilogue &epilogue) {
  return RootLowerer(grad, context, epilogue).crossEntropyPair(loss);
}

} // namespace nnc::loops::detail
