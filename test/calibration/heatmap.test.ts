import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { heatColour, heatmapPng } from '../../calibration/report/heatmap.js';

describe('heatmapPng', () => {
  it('draws each cell in its colour, saturating at maxValue, grey where there is no data', async () => {
    const png = await heatmapPng(Float64Array.from([0, 1, 5, NaN]), 2, 2, { maxValue: 2, cellPx: 4 });
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([8, 8, 3]);
    const at = (x: number, y: number): number[] => [...data.subarray((y * 8 + x) * 3, (y * 8 + x) * 3 + 3)];
    expect(at(1, 1)).toEqual(heatColour(0));
    expect(at(5, 1)).toEqual(heatColour(0.5));
    expect(at(1, 5)).toEqual(heatColour(1));
    expect(at(6, 6)).toEqual([128, 128, 128]);
  });

  it('refuses values that do not match the grid', async () => {
    await expect(heatmapPng(new Float64Array(3), 2, 2)).rejects.toThrow("heatmapPng: 'values' must have 4 values (cols x rows), got 3");
  });
});
