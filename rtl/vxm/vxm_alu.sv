// One VXM ALU for one superlane: LANES lanes of 32-bit elements, one superlane per cycle (a full
// vector takes as many cycles as there are superlanes, like the machine's skew). Bit-exact with
// the model's functional core (models/func/vxm.h):
// * integers (i8, i16, i32): add/sub/mul saturating or wrapping, max, min, and/or/xor, shl/shr,
//   compares, select, neg/abs (saturating), relu, mov;
// * fp32 so far: add, sub and mul (round to nearest even, subnormals kept), max, min, compares,
//   neg, abs, relu, select, mov (every NaN result the canonical quiet NaN; -0 and +0 equal;
//   max(-0, +0) = +0, min = -0);
// * casts (op cast, source `width`, target `to`): integer to integer saturating, integer to fp32
//   rounded to nearest even, fp32 to integer rounded to nearest even and saturating (NaN to 0).
// The result is registered: it appears one cycle after the operands, with `out_valid`.
//
// op codes follow func::VxmOp; width: 0 = i8, 1 = i16, 2 = i32, 3 = fp32. An integer element's
// value is its low bits (sign-extended); the bits above it in `d` are zero.
module vxm_alu #(
    parameter int LANES = 16
) (
    input  logic                   clk,
    input  logic                   rst_n,
    input  logic                   in_valid,
    input  logic [4:0]             op,
    input  logic [1:0]             width,
    input  logic [1:0]             to,
    input  logic                   saturate,
    input  logic [4:0]             shamt,
    input  logic [LANES*32-1:0]    a,
    input  logic [LANES*32-1:0]    b,
    input  logic [LANES*32-1:0]    mask,
    output logic                   out_valid,
    output logic [LANES*32-1:0]    d
);
  localparam logic [4:0] OP_ADD = 5'd0, OP_SUB = 5'd1, OP_MUL = 5'd2, OP_MAX = 5'd3,
      OP_MIN = 5'd4, OP_AND = 5'd5, OP_OR = 5'd6, OP_XOR = 5'd7, OP_SHL = 5'd8, OP_SHR = 5'd9,
      OP_EQ = 5'd10, OP_NE = 5'd11, OP_LT = 5'd12, OP_LE = 5'd13, OP_GT = 5'd14, OP_GE = 5'd15,
      OP_SEL = 5'd16, OP_NEG = 5'd17, OP_ABS = 5'd18, OP_RELU = 5'd19, OP_CAST = 5'd23,
      OP_MOV = 5'd24;

  // The element's bits sign-extended from `width` to 64.
  function automatic logic signed [63:0] sext(input logic [31:0] x, input logic [1:0] w);
    case (w)
      2'd0: sext = {{56{x[7]}}, x[7:0]};
      2'd1: sext = {{48{x[15]}}, x[15:0]};
      default: sext = {{32{x[31]}}, x};
    endcase
  endfunction

  // The low `width` bits of x (upper bits zero).
  function automatic logic [31:0] trunc(input logic [63:0] x, input logic [1:0] w);
    case (w)
      2'd0: trunc = {24'd0, x[7:0]};
      2'd1: trunc = {16'd0, x[15:0]};
      default: trunc = x[31:0];
    endcase
  endfunction

  // x clamped to the range of a signed `width`-bit integer.
  function automatic logic [31:0] clamp(input logic signed [63:0] x, input logic [1:0] w);
    logic signed [63:0] hi, lo;
    case (w)
      2'd0: begin hi = 64'sd127; lo = -64'sd128; end
      2'd1: begin hi = 64'sd32767; lo = -64'sd32768; end
      default: begin hi = 64'sd2147483647; lo = -64'sd2147483648; end
    endcase
    clamp = trunc(x > hi ? hi : x < lo ? lo : x, w);
  endfunction

  function automatic logic [31:0] ones(input logic [1:0] w);
    ones = trunc(64'hFFFF_FFFF_FFFF_FFFF, w);
  endfunction

  localparam logic [31:0] QNAN = 32'h7FC0_0000;  // the canonical quiet NaN

  // Of an fp32 value without its sign bit.
  function automatic logic is_nan(input logic [30:0] m);
    is_nan = m[30:23] == 8'hFF && m[22:0] != 23'd0;
  endfunction
  function automatic logic is_zero(input logic [30:0] m);
    is_zero = m == 31'd0;
  endfunction
  // x < y for two numbers that are not NaN (IEEE: -0 == +0).
  function automatic logic f_lt(input logic [31:0] x, input logic [31:0] y);
    if (is_zero(x[30:0]) && is_zero(y[30:0])) f_lt = 1'b0;
    else if (x[31] != y[31]) f_lt = x[31];
    else if (!x[31]) f_lt = x[30:0] < y[30:0];
    else f_lt = x[30:0] > y[30:0];
  endfunction
  function automatic logic f_eq(input logic [31:0] x, input logic [31:0] y);
    f_eq = x == y || (is_zero(x[30:0]) && is_zero(y[30:0]));
  endfunction

  // The fp32 value with sign `sign`, biased exponent e (1 or more; its hidden bit s[26], clear
  // for a subnormal at e = 1) and 24 mantissa bits s[26:3] followed by guard, round and sticky:
  // rounded to nearest even, overflowing to infinity.
  function automatic logic [31:0] round_pack(input logic sign, input logic [11:0] e0,
                                             input logic [26:0] s);
    logic [24:0] mr;
    logic [11:0] e;
    e = e0;
    mr = {1'b0, s[26:3]} + {24'd0, s[2] && (s[1] || s[0] || s[3])};
    if (mr[24]) begin
      mr = mr >> 1;
      e = e + 12'd1;
    end
    if (e >= 12'd255) return {sign, 31'h7F80_0000};
    return {sign, mr[23] ? e[7:0] : 8'd0, mr[22:0]};
  endfunction

  // x + y in fp32, rounded to nearest even, subnormals kept, every NaN canonical.
  function automatic logic [31:0] f_add(input logic [31:0] x0, input logic [31:0] y0);
    logic [31:0] x, y;
    logic [8:0] ex, e;
    logic [7:0] ey;
    logic [23:0] mx, my;
    logic [26:0] ax, ay, s;
    logic [27:0] sum;
    logic [7:0] shift_by;
    logic sticky;
    sticky = 1'b0;
    if (is_nan(x0[30:0]) || is_nan(y0[30:0])) return QNAN;
    if (x0[30:0] == 31'h7F80_0000 && y0[30:0] == 31'h7F80_0000)
      return x0[31] == y0[31] ? x0 : QNAN;
    if (x0[30:0] == 31'h7F80_0000) return x0;
    if (y0[30:0] == 31'h7F80_0000) return y0;
    // x the larger magnitude
    if (x0[30:0] >= y0[30:0]) begin x = x0; y = y0; end
    else begin x = y0; y = x0; end
    ex = x[30:23] == 8'd0 ? 9'd1 : {1'b0, x[30:23]};
    ey = y[30:23] == 8'd0 ? 8'd1 : y[30:23];
    mx = {x[30:23] != 8'd0, x[22:0]};
    my = {y[30:23] != 8'd0, y[22:0]};
    ax = {mx, 3'b000};
    shift_by = ex[7:0] - ey;
    if (shift_by >= 8'd27) begin
      ay = {26'd0, my != 24'd0};
    end else begin
      ay = {my, 3'b000} >> shift_by;
      sticky = ({my, 3'b000} & ((27'd1 << shift_by) - 27'd1)) != 27'd0;
      ay[0] = ay[0] | sticky;
    end
    e = ex;
    if (x[31] == y[31]) begin
      sum = {1'b0, ax} + {1'b0, ay};
      if (sum[27]) begin
        s = sum[27:1];
        s[0] = s[0] | sum[0];
        e = e + 9'd1;
      end else s = sum[26:0];
    end else begin
      s = ax - ay;
      if (s == 27'd0) return 32'd0;  // x - x is +0
      for (int i = 0; i < 27; i++)
        if (!s[26] && e > 9'd1) begin
          s = s << 1;
          e = e - 9'd1;
        end
    end
    return round_pack(x[31], {3'd0, e}, s);
  endfunction

  // x * y in fp32, rounded to nearest even, subnormals kept, every NaN canonical.
  function automatic logic [31:0] f_mul(input logic [31:0] x, input logic [31:0] y);
    logic sign, sticky;
    logic [23:0] mx, my;
    logic [47:0] p;
    logic signed [11:0] e;  // the product's exponent for a binary point after p[46]
    logic [26:0] s;  // 24 bits of mantissa, then guard, round, sticky
    sign = x[31] ^ y[31];
    if (is_nan(x[30:0]) || is_nan(y[30:0])) return QNAN;
    if (x[30:0] == 31'h7F80_0000 || y[30:0] == 31'h7F80_0000)
      return is_zero(x[30:0]) || is_zero(y[30:0]) ? QNAN : {sign, 31'h7F80_0000};
    if (is_zero(x[30:0]) || is_zero(y[30:0])) return {sign, 31'd0};
    mx = {x[30:23] != 8'd0, x[22:0]};
    my = {y[30:23] != 8'd0, y[22:0]};
    e = 12'(signed'({4'd0, x[30:23] == 8'd0 ? 8'd1 : x[30:23]})) +
        12'(signed'({4'd0, y[30:23] == 8'd0 ? 8'd1 : y[30:23]})) - 12'sd127;
    p = mx * my;  // 1.xxx * 1.yyy: the leading one at bit 46 or 47 (lower for subnormals)
    if (p[47]) e = e + 12'sd1;
    else
      for (int i = 0; i < 47; i++)
        if (!p[46]) begin
          p = p << 1;
          e = e - 12'sd1;
        end
    if (!p[47]) p = p << 1;  // the leading one now at bit 47
    // 24 bits from bit 47 down, then guard, round and sticky from the rest.
    s = {p[47:24], p[23], p[22], p[21:0] != 22'd0};
    // Below the smallest normal exponent: shift right into the subnormal range.
    if (e < 12'sd1) begin
      for (int i = 0; i < 30; i++)
        if (e < 12'sd1) begin
          sticky = s[0] | s[1];
          s = {1'b0, s[26:2], sticky};
          e = e + 12'sd1;
        end
      if (e < 12'sd1) return {sign, 31'd0};
    end
    return round_pack(sign, unsigned'(e), s);
  endfunction

  // A signed integer (|x| <= 2^31) in fp32, rounded to nearest even.
  function automatic logic [31:0] i2f(input logic signed [63:0] x);
    logic sign;
    logic [31:0] m;
    logic [11:0] e;
    sign = x < 0;
    m = sign ? 32'(-x) : x[31:0];  // 2^31 still fits unsigned
    if (m == 32'd0) return 32'd0;
    e = 12'd158;  // 127 + 31: the leading one at bit 31
    for (int i = 0; i < 31; i++)
      if (!m[31]) begin
        m = m << 1;
        e = e - 12'd1;
      end
    return round_pack(sign, e, {m[31:8], m[7], m[6], m[5:0] != 6'd0});
  endfunction

  // An fp32 value as a signed integer of `w`, rounded to nearest even and saturated; NaN is 0.
  function automatic logic [31:0] f2i(input logic [31:0] x, input logic [1:0] w);
    logic [7:0] ex, k;
    logic [23:0] m;
    logic [31:0] q;
    logic g, st;
    if (is_nan(x[30:0])) return 32'd0;
    ex = x[30:23] == 8'd0 ? 8'd1 : x[30:23];
    if (ex >= 8'd158) return clamp(x[31] ? -64'sd4294967296 : 64'sd4294967296, w);  // |x| >= 2^31
    m = {x[30:23] != 8'd0, x[22:0]};
    if (ex >= 8'd150) begin
      q = {8'd0, m} << (ex - 8'd150);
    end else begin
      k = 8'd150 - ex;  // the value is m / 2^k
      if (k >= 8'd25) return 32'd0;  // below a half
      q = {8'd0, m >> k};
      g = m[5'(k - 8'd1)];
      st = (m & ((24'd1 << (k - 8'd1)) - 24'd1)) != 24'd0;
      q = q + {31'd0, g && (st || q[0])};
    end
    return clamp(x[31] ? -signed'({32'd0, q}) : signed'({32'd0, q}), w);
  endfunction

  function automatic logic [31:0] cast(input logic [1:0] w, input logic [1:0] t,
                                       input logic [31:0] x);
    if (w == 2'd3) cast = t == 2'd3 ? x : f2i(x, t);
    else if (t == 2'd3) cast = i2f(sext(x, w));
    else cast = clamp(sext(x, w), t);
  endfunction

  function automatic logic [31:0] fp32(input logic [4:0] o, input logic [31:0] x,
                                       input logic [31:0] y, input logic [31:0] m);
    logic nan2;
    nan2 = is_nan(x[30:0]) || is_nan(y[30:0]);
    case (o)
      OP_ADD: fp32 = f_add(x, y);
      OP_SUB: fp32 = f_add(x, {~y[31], y[30:0]});
      OP_MUL: fp32 = f_mul(x, y);
      OP_MAX: fp32 = nan2 ? QNAN : f_eq(x, y) ? (x & y) : f_lt(y, x) ? x : y;
      OP_MIN: fp32 = nan2 ? QNAN : f_eq(x, y) ? (x | y) : f_lt(x, y) ? x : y;
      OP_EQ: fp32 = !nan2 && f_eq(x, y) ? 32'hFFFF_FFFF : 32'd0;
      OP_NE: fp32 = nan2 || !f_eq(x, y) ? 32'hFFFF_FFFF : 32'd0;
      OP_LT: fp32 = !nan2 && f_lt(x, y) ? 32'hFFFF_FFFF : 32'd0;
      OP_LE: fp32 = !nan2 && (f_lt(x, y) || f_eq(x, y)) ? 32'hFFFF_FFFF : 32'd0;
      OP_GT: fp32 = !nan2 && f_lt(y, x) ? 32'hFFFF_FFFF : 32'd0;
      OP_GE: fp32 = !nan2 && (f_lt(y, x) || f_eq(x, y)) ? 32'hFFFF_FFFF : 32'd0;
      OP_SEL: fp32 = m != 32'd0 ? x : y;
      OP_NEG: fp32 = is_nan(x[30:0]) ? QNAN : {~x[31], x[30:0]};
      OP_ABS: fp32 = is_nan(x[30:0]) ? QNAN : {1'b0, x[30:0]};
      OP_RELU: fp32 = is_nan(x[30:0]) ? QNAN : (!x[31] && !is_zero(x[30:0])) ? x : 32'd0;
      OP_MOV: fp32 = x;
      default: fp32 = 32'd0;
    endcase
  endfunction

  function automatic logic [31:0] lane(input logic [4:0] o, input logic [1:0] w, input logic [1:0] t,
                                       input logic sat, input logic [4:0] sh,
                                       input logic [31:0] ra, input logic [31:0] rb,
                                       input logic [31:0] rm);
    logic signed [63:0] x, y, r;
    x = sext(ra, w);
    y = sext(rb, w);
    if (o == OP_CAST) return cast(w, t, ra);
    if (w == 2'd3) return fp32(o, ra, rb, rm);
    case (o)
      OP_ADD: begin r = x + y; lane = sat ? clamp(r, w) : trunc(r, w); end
      OP_SUB: begin r = x - y; lane = sat ? clamp(r, w) : trunc(r, w); end
      OP_MUL: begin r = x * y; lane = sat ? clamp(r, w) : trunc(r, w); end
      OP_MAX: lane = trunc(x > y ? x : y, w);
      OP_MIN: lane = trunc(x < y ? x : y, w);
      OP_AND: lane = trunc(x & y, w);
      OP_OR: lane = trunc(x | y, w);
      OP_XOR: lane = trunc(x ^ y, w);
      OP_SHL: lane = trunc(x << sh, w);
      OP_SHR: lane = trunc(x >>> sh, w);
      OP_EQ: lane = x == y ? ones(w) : 32'd0;
      OP_NE: lane = x != y ? ones(w) : 32'd0;
      OP_LT: lane = x < y ? ones(w) : 32'd0;
      OP_LE: lane = x <= y ? ones(w) : 32'd0;
      OP_GT: lane = x > y ? ones(w) : 32'd0;
      OP_GE: lane = x >= y ? ones(w) : 32'd0;
      OP_SEL: lane = trunc({32'd0, rm}, w) != 32'd0 ? trunc({32'd0, ra}, w) : trunc({32'd0, rb}, w);
      OP_NEG: lane = clamp(-x, w);
      OP_ABS: lane = clamp(x < 0 ? -x : x, w);
      OP_RELU: lane = trunc(x > 0 ? x : 64'sd0, w);
      OP_MOV: lane = trunc({32'd0, ra}, w);
      default: lane = 32'd0;
    endcase
  endfunction

  // Every lane's result. Evaluated at the clock edge only (inside the register's process), so a
  // simulator does not recompute it at every change of the operands.
  function automatic logic [LANES*32-1:0] results();
    for (int i = 0; i < LANES; i++)
      results[i*32+:32] = lane(op, width, to, saturate, shamt, a[i*32+:32], b[i*32+:32],
                               mask[i*32+:32]);
`ifdef LPU_PLANT_FAULT
    // The planted fault that proves the lockstep checker (docs/cosim.md): fp32 mul gets bit 0 of
    // lane 5's result inverted.
    if (op == 5'd2 && width == 2'd3) results[5*32] = ~results[5*32];
`endif
  endfunction

  // Per-lane views of the operand and result buses, for waveforms only (a lane per signal).
  logic [31:0] a_lane[LANES], b_lane[LANES], d_lane[LANES];
  always_comb
    for (int i = 0; i < LANES; i++) begin
      a_lane[i] = a[i*32+:32];
      b_lane[i] = b[i*32+:32];
      d_lane[i] = d[i*32+:32];
    end

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      out_valid <= 1'b0;
      d <= '0;
    end else begin
      out_valid <= in_valid;
      if (in_valid) d <= results();
    end
  end
endmodule
