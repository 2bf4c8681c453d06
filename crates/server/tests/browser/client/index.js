// Remember which server and app to use (given in the query string by the test), then sign in.
const params = new URLSearchParams(window.location.search);
if (params.get('server')) sessionStorage.setItem('sample_app_server', params.get('server'));
if (params.get('app')) sessionStorage.setItem('sample_app_id', params.get('app'));
document.getElementById('sign-in').addEventListener('click', () => {
  startSignIn(sessionStorage.getItem('sample_app_server'), sessionStorage.getItem('sample_app_id'));
});
