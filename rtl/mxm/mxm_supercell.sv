// One MXM supercell: a 16 x 16 array of int8 multiply-accumulate cells (the model's MXM plane is
// a grid of them, models/func/mxm.h). Weights: a staging buffer and the active weights, a row of
// 16 int8 weights (column j in byte j) per clock: `w_load` into the staging buffer, `w_direct`
// straight into the active weights, `w_install` copies the staging buffer into the active
// weights, `w_clear` zeroes the buffer `w_target` names (0 staging, 1 active) before a new set.
// Activations: `x_valid` with 16 int8 activations (row r in byte r) and the 16 int32 partial sums
// coming down the columns (`psum_in`, column c in bits 32c); one clock later `psum_out` holds
// psum_in[c] + sum over r of x[r] * W[r][c], modulo 2^32, with `out_valid`.
module mxm_supercell (
    input  logic          clk,
    input  logic          rst_n,
    input  logic          w_load,
    input  logic          w_direct,
    input  logic          w_install,
    input  logic          w_clear,
    input  logic          w_target,
    input  logic [3:0]    w_row,
    input  logic [127:0]  w_data,
    input  logic          x_valid,
    input  logic [127:0]  x,
    input  logic [511:0]  psum_in,
    output logic          out_valid,
    output logic [511:0]  psum_out
);
  logic [127:0] staged[16], active[16];  // [row], column j in byte j

  // Every column's sum, at the clock edge only.
  function automatic logic [511:0] sums();
    logic signed [31:0] s;
    for (int c = 0; c < 16; c++) begin
      s = signed'(psum_in[c*32+:32]);
      for (int r = 0; r < 16; r++)
        s = s + 32'(signed'(x[r*8+:8])) * 32'(signed'(active[r][c*8+:8]));
      sums[c*32+:32] = s;
    end
  endfunction

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      out_valid <= 1'b0;
      psum_out <= '0;
      for (int r = 0; r < 16; r++) begin
        staged[r] <= '0;
        active[r] <= '0;
      end
    end else begin
      out_valid <= x_valid;
      if (x_valid) psum_out <= sums();
      if (w_clear)
        for (int r = 0; r < 16; r++)
          if (w_target) active[r] <= '0;
          else staged[r] <= '0;
      if (w_load) staged[w_row] <= w_data;
      if (w_direct) active[w_row] <= w_data;
      if (w_install)
        for (int r = 0; r < 16; r++) active[r] <= staged[r];
    end
  end
endmodule
