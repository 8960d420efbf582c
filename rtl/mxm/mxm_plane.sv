// An MXM plane of ROWS x COLS int8 cells (tiny's 32 x 32) built from 16 x 16 supercells, with the
// plane's int32 accumulators (models/func/mxm.h). Weight rows go to the supercells of their row
// block (`w_row`; `w_data` a row across all columns, column c in byte c). An activation vector
// (`x`, row r in byte r) enters the top row of supercells; the partial sums go down the columns,
// one supercell row per clock, each later row taking its activations that many clocks later, so
// the vector's products (column c in bits 32c) leave the bottom row after ROWS/16 clock edges
// (the first takes the vector in), with `p_valid`. Accumulate: `acc_valid` with a product (`acc_in`), an accumulator
// `acc_slot` and `acc_mode` (func::MxmPlane::AccMode: 1 only, 2 last, 3 first, 4 next): only and
// first set the accumulator, last and next add (modulo 2^32); one clock later `acc_out` holds the
// accumulator, with `acc_emit` for only and last.
module mxm_plane #(
    parameter int ROWS = 32,
    parameter int COLS = 32,
    parameter int SLOTS = 320,
    localparam int SW = $clog2(SLOTS)
) (
    input  logic                  clk,
    input  logic                  rst_n,
    input  logic                  w_load,
    input  logic                  w_direct,
    input  logic                  w_install,
    input  logic                  w_clear,
    input  logic                  w_target,
    input  logic [15:0]           w_row,
    input  logic [COLS*8-1:0]     w_data,
    input  logic                  x_valid,
    input  logic [ROWS*8-1:0]     x,
    output logic                  p_valid,
    output logic [COLS*32-1:0]    product,
    input  logic                  acc_valid,
    input  logic [2:0]            acc_mode,
    input  logic [SW-1:0]         acc_slot,
    input  logic [COLS*32-1:0]    acc_in,
    output logic                  acc_emit,
    output logic [COLS*32-1:0]    acc_out
);
  localparam int RB = ROWS / 16, CB = COLS / 16;

  // Activations of row block i, delayed i clocks (with their valid bit).
  logic [127:0] x_d[RB][RB];
  logic v_d[RB][RB];
  always_ff @(posedge clk) begin
    for (int i = 0; i < RB; i++) begin
      x_d[i][0] <= x[i*128+:128];
      v_d[i][0] <= x_valid;
      for (int k = 1; k < RB; k++) begin
        x_d[i][k] <= x_d[i][k-1];
        v_d[i][k] <= v_d[i][k-1];
      end
    end
  end

  logic [511:0] psum[RB+1][CB];
  logic valid[RB+1][CB];
  for (genvar j = 0; j < CB; j++) begin : g_col
    assign psum[0][j] = '0;
    for (genvar i = 0; i < RB; i++) begin : g_row
      // Row block 0 takes the vector as it enters; row block i, i clocks later.
      logic [127:0] xi;
      logic vi;
      if (i == 0) begin : g_first
        assign xi = x[0+:128];
        assign vi = x_valid;
      end else begin : g_later
        assign xi = x_d[i][i-1];
        assign vi = v_d[i][i-1];
      end
      mxm_supercell u_cell (
          .clk(clk),
          .rst_n(rst_n),
          .w_load(w_load && 32'(w_row) / 16 == i),
          .w_direct(w_direct && 32'(w_row) / 16 == i),
          .w_install(w_install),
          .w_clear(w_clear),
          .w_target(w_target),
          .w_row(w_row[3:0]),
          .w_data(w_data[j*128+:128]),
          .x_valid(vi),
          .x(xi),
          .psum_in(psum[i][j]),
          .out_valid(valid[i+1][j]),
          .psum_out(psum[i+1][j])
      );
    end
    assign product[j*512+:512] = psum[RB][j];
  end
  assign p_valid = valid[RB][0];

  logic [COLS*32-1:0] acc[SLOTS];
  always_ff @(posedge clk) begin
    if (!rst_n) begin
      acc_emit <= 1'b0;
      acc_out <= '0;
    end else begin
      acc_emit <= acc_valid && (acc_mode == 3'd1 || acc_mode == 3'd2);
      if (acc_valid) begin
        if (acc_mode == 3'd1 || acc_mode == 3'd3) begin
          acc[acc_slot] <= acc_in;
          acc_out <= acc_in;
        end else
          for (int c = 0; c < COLS; c++) begin
            acc[acc_slot][c*32+:32] <= acc[acc_slot][c*32+:32] + acc_in[c*32+:32];
            acc_out[c*32+:32] <= acc[acc_slot][c*32+:32] + acc_in[c*32+:32];
          end
      end
    end
  end
endmodule
