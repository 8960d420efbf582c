// The SXM's lane network for one byte plane of a whole vector (LANES lanes, lane 0 the south
// end), one plane per clock, result registered: it appears one cycle later with `out_valid`.
// Bit-exact with the model's functional core (models/func/sxm.h):
// * op 0, shift north: d[i] = a[i - n] for i >= n, else 0;  op 1, shift south: d[i] = a[i + n]
//   for i + n < LANES, else 0  (n = amount, 0 .. LANES);
// * op 2, select: d[i] = i < k ? a[i] : b[i]  (k = amount, 0 .. LANES);
// * op 3, permute: d[map[i]] = a[i], map[i] = {map_hi[i], map_lo[i]}, a bijection of the lanes.
//   The first lane (lowest) whose target is out of range, or already taken by a lower lane, sets
//   `bad` with `bad_lane`, `bad_dup` (0: out of range, 1: taken) and `bad_first` (the lane that
//   took it); d is then unspecified (the lanes before the bad one are placed, the rest zero).
module sxm_lanes #(
    parameter int LANES = 32
) (
    input  logic                 clk,
    input  logic                 rst_n,
    input  logic                 in_valid,
    input  logic [1:0]           op,
    input  logic [15:0]          amount,
    input  logic [LANES*8-1:0]   a,
    input  logic [LANES*8-1:0]   b,
    input  logic [LANES*8-1:0]   map_lo,
    input  logic [LANES*8-1:0]   map_hi,
    output logic                 out_valid,
    output logic [LANES*8-1:0]   d,
    output logic                 bad,
    output logic                 bad_dup,
    output logic [15:0]          bad_lane,
    output logic [15:0]          bad_first
);
  localparam logic [1:0] OP_NORTH = 2'd0, OP_SOUTH = 2'd1, OP_SELECT = 2'd2, OP_PERMUTE = 2'd3;
  localparam int LW = $clog2(LANES);

  // The plane's result and the permute's verdict, computed at the clock edge only.
  typedef struct packed {
    logic [LANES*8-1:0] d;
    logic bad, dup;
    logic [15:0] lane, first;
  } result_t;

  function automatic result_t network();
    logic [LANES-1:0] taken;
    logic [15:0] owner[LANES];
    logic [15:0] t;
    logic [LW-1:0] ti;
    int n;
    network = '0;
    n = int'(amount);
    taken = '0;
    for (int i = 0; i < LANES; i++) owner[i] = 16'd0;
    case (op)
      OP_NORTH:
        for (int i = 0; i < LANES; i++)
          if (i >= n) network.d[i*8+:8] = a[(i-n)*8+:8];
      OP_SOUTH:
        for (int i = 0; i < LANES; i++)
          if (i + n < LANES) network.d[i*8+:8] = a[(i+n)*8+:8];
      OP_SELECT:
        for (int i = 0; i < LANES; i++)
          network.d[i*8+:8] = i < n ? a[i*8+:8] : b[i*8+:8];
      OP_PERMUTE:
        for (int i = 0; i < LANES; i++)
          if (!network.bad) begin
            t = {map_hi[i*8+:8], map_lo[i*8+:8]};
            ti = t[LW-1:0];  // (used only when t is in range)
            if (32'(t) >= LANES) begin
              network.bad = 1'b1;
              network.lane = 16'(i);
            end else if (taken[ti]) begin
              network.bad = 1'b1;
              network.dup = 1'b1;
              network.lane = 16'(i);
              network.first = owner[ti];
            end else begin
              taken[ti] = 1'b1;
              owner[ti] = 16'(i);
              network.d[32'(t)*8+:8] = a[i*8+:8];
            end
          end
      default: ;
    endcase
  endfunction

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      out_valid <= 1'b0;
      d <= '0;
      bad <= 1'b0;
      bad_dup <= 1'b0;
      bad_lane <= '0;
      bad_first <= '0;
    end else begin
      out_valid <= in_valid;
      if (in_valid) {d, bad, bad_dup, bad_lane, bad_first} <= network();
    end
  end
endmodule
