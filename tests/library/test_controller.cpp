#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include "ncl/core/gradcheck.hpp"
#include "ncl/library/controller.hpp"
#include "ncl/library/mask.hpp"
#include "ncl/train/adamw.hpp"

using ncl::matrix;
using ncl::library::field;
namespace lib = ncl::library;

namespace {

ncl::machine::machine_shape small_shape() {
  ncl::machine::machine_shape s;
  s.n = 8;
  s.registers = 4;
  s.memory = 8;
  s.lines = 5;
  return s;
}

std::vector<double> flatten(const ncl::machine::soft_program<double>& p) {
  std::vector<double> out;
  for (field f : lib::all_fields) {
    const auto& m = lib::field_of(p, f);
    out.insert(out.end(), m.data(), m.data() + m.size());
  }
  return out;
}

ncl::machine::soft_program<double> unflatten(std::span<const double> flat,
                                              const ncl::machine::machine_shape& shape) {
  auto p = lib::zero_program<double>(shape);
  std::size_t at = 0;
  for (field f : lib::all_fields) {
    auto& m = lib::field_of(p, f);
    std::memcpy(m.data(), flat.data() + at, sizeof(double) * static_cast<std::size_t>(m.size()));
    at += static_cast<std::size_t>(m.size());
  }
  return p;
}

}  // namespace

TEST_CASE("free controller emits softmax rows and reproduces a set program", "[library][controller]") {
  const auto shape = small_shape();
  ncl::train::parameter_set<double> params;
  lib::free_controller<double> controller(params, "prog", shape);
  CHECK(params.count() == 5);
  CHECK(params.info(controller.parameter(field::imm)).name == "prog.imm");
  CHECK(params.total_size() == static_cast<std::size_t>(shape.lines * (23 + 3 * 4 + 8)));

  auto target = lib::zero_program<double>(shape);
  for (ncl::index l = 0; l < shape.lines; ++l) {
    target.op(l, (3 * l + 1) % 23) = 1;
    target.dst(l, l % 4) = 1;
    target.a(l, (l + 1) % 4) = 1;
    target.b(l, (l + 2) % 4) = 1;
    target.imm(l, (5 * l) % 8) = 1;
  }
  controller.set_program(target, 12.0);
  ncl::machine::soft_program<double> program;
  controller.forward(program);
  for (field f : lib::all_fields) {
    const auto& p = lib::field_of(program, f);
    const auto& t = lib::field_of(target, f);
    for (ncl::index l = 0; l < shape.lines; ++l) {
      CHECK(p.row(l).sum() == Approx(1.0));
      ncl::index best = 0;
      p.row(l).maxCoeff(&best);
      ncl::index want = 0;
      t.row(l).maxCoeff(&want);
      CHECK(best == want);
    }
  }
}

TEST_CASE("free controller backward matches finite differences", "[library][controller][gradcheck]") {
  const auto shape = small_shape();
  ncl::train::parameter_set<double> params;
  lib::free_controller<double> controller(params, "prog", shape);
  ncl::rng random(3);
  controller.randomize(random, 2.0);
  ncl::machine::soft_program<double> program;
  auto result = ncl::gradcheck(
      {{"logits", params.values()}},
      [&] {
        controller.forward(program);
        return flatten(program);
      },
      [&](std::span<const double> dout) {
        params.zero_grad();
        controller.forward(program);
        controller.backward(unflatten(dout, shape), program);
        return std::vector<std::vector<double>>{{params.grads().begin(), params.grads().end()}};
      });
  INFO(result.report());
  CHECK(result.ok);
}

TEST_CASE("contextual controller backward matches finite differences", "[library][controller][gradcheck]") {
  const auto shape = small_shape();
  ncl::train::parameter_set<double> params;
  lib::contextual_controller<double> controller(params, "ctx", shape, 3);
  ncl::rng random(4);
  controller.randomize(random, 2.0);
  random.fill_normal(params.values(), 0.0, 0.5);  // biases too
  matrix<double> z(2, 3);
  random.fill_normal(std::span<double>(z.data(), 6));
  std::vector<ncl::machine::soft_program<double>> programs;
  auto forward = [&] {
    controller.forward(programs, z);
    std::vector<double> out;
    for (const auto& p : programs) {
      const auto f = flatten(p);
      out.insert(out.end(), f.begin(), f.end());
    }
    return out;
  };
  auto backward = [&](std::span<const double> dout) {
    params.zero_grad();
    controller.forward(programs, z);
    std::vector<ncl::machine::soft_program<double>> dprograms;
    const std::size_t per = dout.size() / 2;
    dprograms.push_back(unflatten(dout.subspan(0, per), shape));
    dprograms.push_back(unflatten(dout.subspan(per), shape));
    matrix<double> dz = matrix<double>::Zero(2, 3);
    controller.backward(dprograms, programs, z, &dz);
    return std::vector<std::vector<double>>{{params.grads().begin(), params.grads().end()},
                                            {dz.data(), dz.data() + dz.size()}};
  };
  ncl::gradcheck_options options;
  options.samples_per_input = 200;
  auto result = ncl::gradcheck({{"parameters", params.values()}, {"z", {z.data(), 6}}}, forward,
                               backward, options);
  INFO(result.report());
  CHECK(result.ok);
}

TEST_CASE("masked controller parameters never change under AdamW, weight decay included",
          "[library][mask]") {
  const auto shape = small_shape();
  ncl::train::parameter_set<float> params;
  lib::free_controller<float> free(params, "free", shape);
  lib::contextual_controller<float> ctx(params, "ctx", shape, 4);
  ncl::rng random(5);
  random.fill_normal(params.values(), 0.0, 1.0);
  lib::program_mask mask(shape.lines);
  mask.freeze_program(0, 3).freeze_field(3, field::op).freeze_field(4, field::imm);
  lib::apply_mask(params, free, mask);
  lib::apply_mask(params, ctx, mask);
  const std::vector<float> before(params.values().begin(), params.values().end());

  ncl::train::adamw_options options;
  options.lr = 0.05;
  options.weight_decay = 0.5;  // strong decay: a leak through it would show at once
  ncl::train::adamw<float> optimizer(params, options);
  for (int step = 0; step < 50; ++step) {
    params.zero_grad();
    random.fill_normal(params.grads(), 0.0, 1.0);
    optimizer.step(params);
  }
  std::size_t frozen = 0, moved = 0;
  const auto mask_buffer = params.mask();
  for (std::size_t i = 0; i < before.size(); ++i) {
    if (mask_buffer[i] == 0) {
      ++frozen;
      REQUIRE(std::memcmp(&before[i], &params.values()[i], sizeof(float)) == 0);  // bit for bit
    } else {
      moved += before[i] != params.values()[i];
    }
  }
  CHECK(frozen > 0);
  CHECK(moved == before.size() - frozen);  // every trainable entry did move
  // The frozen lines of the free controller: lines 0-2 entirely, line 3's op, line 4's imm.
  const auto m = params.mask(free.parameter(field::op));
  CHECK(m[0] == 0);
  CHECK(m[3 * 23] == 0);
  CHECK(m[4 * 23] == 1);
  const auto mi = params.mask(free.parameter(field::imm));
  CHECK(mi[4 * 8] == 0);
  CHECK(mi[3 * 8] == 1);
}

TEST_CASE("masks reject lines outside the program", "[library][mask]") {
  lib::program_mask mask(4);
  CHECK_THROWS_WITH(mask.freeze_program(2, 3), Catch::Contains("lines [2, 5) are outside [0, 4)"));
  CHECK_THROWS_AS(mask.freeze_field(-1, field::a), ncl::value_error);
  ncl::train::parameter_set<double> params;
  auto shape = small_shape();
  lib::free_controller<double> controller(params, "p", shape);
  CHECK_THROWS_WITH(lib::apply_mask(params, controller, mask),
                    Catch::Contains("the mask has 4 lines, the controller 5"));
}
