// A production build as a webpack 5 user writes it: the entry, its worker and
// the package's WASM (found through `new URL(..., import.meta.url)`) end up in
// `--output-path`; index.html is copied next to them.
const { readFileSync } = require('node:fs');
const path = require('node:path');

class CopyIndexHtml {
  apply(compiler) {
    const { RawSource } = compiler.webpack.sources;
    compiler.hooks.thisCompilation.tap('CopyIndexHtml', (compilation) => {
      compilation.hooks.processAssets.tap({ name: 'CopyIndexHtml', stage: compiler.webpack.Compilation.PROCESS_ASSETS_STAGE_ADDITIONAL }, () => {
        compilation.emitAsset('index.html', new RawSource(readFileSync(path.join(__dirname, 'src', 'index.html'))));
      });
    });
  }
}

module.exports = {
  mode: 'production',
  entry: './src/main.js',
  output: { filename: 'main.js', publicPath: 'auto', clean: true },
  plugins: [new CopyIndexHtml()],
};
