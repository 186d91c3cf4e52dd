// serverless.yml's CORS origins: CORS_ALLOWED_ORIGINS, comma-separated (serverless variables cannot
// split a string into the list httpApi.cors wants). Unset: the local stack's own origin, so that no
// page served from elsewhere reads the API's answers until a deployment names its front-end.
module.exports.allowedOrigins = () => {
  const listed = (process.env.CORS_ALLOWED_ORIGINS ?? '')
    .split(',')
    .map((origin) => origin.trim())
    .filter(Boolean);
  if (listed.includes('*'))
    throw new Error('CORS_ALLOWED_ORIGINS: list origins such as https://app.example.com, not *');
  const port = process.env.PORT || '3000';
  return listed.length > 0 ? listed : [`http://localhost:${port}`, `http://127.0.0.1:${port}`];
};
